"""resultkit.cache_policies"""
