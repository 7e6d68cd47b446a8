"""Building blocks of the secure-qdrant program: pure renderers and thin ComponentResources."""
