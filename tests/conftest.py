from redis_server import redis_client, redis_url

__all__ = ["redis_client", "redis_url"]
