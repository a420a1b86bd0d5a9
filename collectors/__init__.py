"""seaview.collectors: code that runs inside the user's process and writes runs."""
