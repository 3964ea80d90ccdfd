"""``python -m ml.market.native``: compile the C engine into its cache ahead of first use."""
from ml.market.native import build

if __name__ == "__main__":
    print(build())
