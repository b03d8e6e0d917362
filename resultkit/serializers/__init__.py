"""resultkit.serializers"""
