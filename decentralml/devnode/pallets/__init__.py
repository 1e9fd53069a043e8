"""The devnode runtime's pallets, one module each (declared with :mod:`..pallet`)."""
