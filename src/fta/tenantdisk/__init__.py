"""Per-tenant data file systems with a hard size: a root helper on the host and its client.

Each tenant's data volume `fta-data-<id>` is a bind of `<root>/mounts/<id>`, where the helper
mounts the tenant's own ext4 image (`<root>/images/<id>.img`, sparse, sized from the plan).
A full image refuses writes with ENOSPC; the host's disk is never touched beyond it.
"""
