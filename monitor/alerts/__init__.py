"""Alerts (issue 14): tell people within minutes, in the channel they live in.

`rules` decides (pure: which new posts a rule matches, whether posts spike, which sources went
quiet), `message` words it, `store` keeps `alert_events` (the claims that make each alert go out
once), `deliver` hands messages to Apprise, and `pipeline` runs them after a collection pass.
"""
