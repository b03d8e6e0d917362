"""resultkit.transactions"""
