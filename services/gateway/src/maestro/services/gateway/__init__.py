"""The gateway: REST (and later GraphQL/SSE) in front of the gRPC services."""
