"""Operations: the leader lease between replicas, database backup and restore."""
