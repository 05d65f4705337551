"""gRPC servicer of the policy service: request in, domain call, response out.

Errors are the domain's ``MaestroError``s, mapped to statuses by the server
interceptor; the caller's identity comes from the call context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from maestro.policy.v1 import policy_service_pb2 as pb
from maestro.policy.v1 import policy_service_pb2_grpc as pb_grpc
from maestro.services.policy.listing import Listing
from maestro.services.policy.service import PolicyService
from maestro.services.policy.views import (
    bundle_message,
    revision_message,
    test_summary_message,
)


class PolicyServicer(pb_grpc.PolicyServiceServicer):
    """``maestro.policy.v1.PolicyService``."""

    def __init__(self, service: PolicyService, listing: Listing) -> None:
        self._service = service
        self._listing = listing

    async def Decide(
        self, request: pb.DecideRequest, context: grpc.aio.ServicerContext
    ) -> pb.DecideResponse:
        return pb.DecideResponse(decision=await self._service.decide(request))

    async def BatchDecide(
        self, request: pb.BatchDecideRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchDecideResponse:
        return pb.BatchDecideResponse(decisions=await self._service.batch_decide(request))

    async def GetDecision(
        self, request: pb.GetDecisionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetDecisionResponse:
        return pb.GetDecisionResponse(decision=await self._service.get_decision(request))

    async def ListDecisions(
        self, request: pb.ListDecisionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDecisionsResponse:
        return await self._listing.list_decisions(request)

    async def GetBundleStatus(
        self, request: pb.GetBundleStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBundleStatusResponse:
        return pb.GetBundleStatusResponse(
            bundle=bundle_message(await self._service.bundle_status())
        )

    async def ReloadBundle(
        self, request: pb.ReloadBundleRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReloadBundleResponse:
        result = await self._service.reload_bundle(request)
        response = pb.ReloadBundleResponse(
            bundle=bundle_message(result.status), changed=result.changed
        )
        if result.candidate_tests is not None:
            response.candidate_tests.CopyFrom(test_summary_message(result.candidate_tests))
            response.candidate_revision = result.candidate_revision
        return response

    async def WatchBundleRevision(
        self, request: pb.WatchBundleRevisionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchBundleRevisionResponse]:
        async for bundle in self._service.watch_bundle_revision():
            yield revision_message(bundle)
