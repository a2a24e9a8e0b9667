"""Deploy: serve a published model on KServe (cluster) or a local KServe model server (one machine)."""
