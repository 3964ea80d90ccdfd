"""Project benchmarks (``make bench``): each prints ``name: value unit`` lines."""
