"""resultkit.storage"""
