"""resultkit.results"""
