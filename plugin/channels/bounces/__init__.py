"""Inbound bounces and complaints for the email channel: read them (parse), tie them to their
message and record them (inbound), and receive them over SMTP (receiver, `okaeri bounces`)."""
