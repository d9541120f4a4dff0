"""simcore: the domain, persistence and services of simsmith.

Identifiers (ICCID, IMSI, MSISDN, EID), the inventory store (SQLModel + Alembic), lifecycle state
machines, inventory services, the hash-chained audit log and the transactional outbox. See
docs/architecture.md for the layering rule: tools/ and api/ call into simcore; simcore calls down
into hsm_sim/, esim/ and cards/, never up.
"""
