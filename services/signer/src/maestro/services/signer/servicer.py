"""gRPC servicer of the signer: request in, domain call, response out.

Errors are the domain's ``MaestroError``s, mapped to statuses by the server
interceptor; the caller's identity comes from the call context.
"""

from __future__ import annotations

import grpc

from maestro.services.signer.service import Signer
from maestro.signer.v1 import signer_service_pb2 as pb
from maestro.signer.v1 import signer_service_pb2_grpc as pb_grpc


class SignerServicer(pb_grpc.SignerServiceServicer):
    """``maestro.signer.v1.SignerService``."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    async def SignReceipt(
        self, request: pb.SignReceiptRequest, context: grpc.aio.ServicerContext
    ) -> pb.SignReceiptResponse:
        return await self._signer.sign_receipt(request)

    async def VerifyReceipt(
        self, request: pb.VerifyReceiptRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerifyReceiptResponse:
        return await self._signer.verify_receipt(request)

    async def GetReceipt(
        self, request: pb.GetReceiptRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReceiptResponse:
        return await self._signer.get_receipt(request)

    async def ListReceipts(
        self, request: pb.ListReceiptsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListReceiptsResponse:
        return await self._signer.list_receipts(request)

    async def ListPublicKeys(
        self, request: pb.ListPublicKeysRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPublicKeysResponse:
        return self._signer.list_public_keys()

    async def RotateKey(
        self, request: pb.RotateKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.RotateKeyResponse:
        return await self._signer.rotate_key(request)

    async def GetCheckpoint(
        self, request: pb.GetCheckpointRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCheckpointResponse:
        return await self._signer.get_checkpoint(request)

    async def GetInclusionProof(
        self, request: pb.GetInclusionProofRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInclusionProofResponse:
        return await self._signer.get_inclusion_proof(request)

    async def GetConsistencyProof(
        self, request: pb.GetConsistencyProofRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetConsistencyProofResponse:
        return await self._signer.get_consistency_proof(request)

    async def ExportEvidenceBundle(
        self, request: pb.ExportEvidenceBundleRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExportEvidenceBundleResponse:
        return await self._signer.export_evidence_bundle(request)
