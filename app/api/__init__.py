"""REST routes per capability, the response envelope, errors and middleware."""
