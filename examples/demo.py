"""The resultkit demo (grows with the product)."""

print("resultkit demo: nothing to show yet")
