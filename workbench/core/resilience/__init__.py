"""The resilient call path every call goes through: timeouts, retries, breaker, fallback, hedging, rate limits."""
