"""The SIP edge: Kamailio config rendering, process supervision and JSON-RPC."""

from cti.edge.process import EdgeStartError, KamailioEdge
from cti.edge.render import EdgeSettings, RenderedEdge, WorkerTarget, render
from cti.edge.rpc import EdgeRpc, EdgeRpcError

__all__ = [
    "EdgeRpc",
    "EdgeRpcError",
    "EdgeSettings",
    "EdgeStartError",
    "KamailioEdge",
    "RenderedEdge",
    "WorkerTarget",
    "render",
]
