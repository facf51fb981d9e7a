"""Webhooks: a project's endpoints receive signed POSTs when its runs and vector store files finish.

The pieces, each on its own: `events` (the names), `outbox` (events written in the transaction that makes them
happen), `signing` (Standard Webhooks), `addresses` (which receivers may be reached), `schedule` (when a failing
delivery is tried again, and when its endpoint is given up on). Delivery itself is the `webhooks` queue's work
(worker/webhook_delivery.py).
"""
