"""The scenario tick: each enabled preset's audience through the gates into the outbox, in set-based SQL."""
