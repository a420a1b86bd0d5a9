"""seaview.kernels: exact attention quantities from stored q/k (torch reference + Triton)."""
