"""Reply text: what the customer wrote, without quoted history and signature."""
