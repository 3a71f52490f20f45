"""Rankings and item recommendations per shop (NumPy/SciPy), with an offline evaluation harness."""
