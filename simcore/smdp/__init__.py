"""simsmith and the SM-DP+ (GSMA SGP.22 v2.5): the ES2+ functions on both sides, the SM-DP+'s
stock, order book and call log, and the port simsmith's eSIM order service drives an SM-DP+
through.

    port.py              SmdpPort: the four ES2+ calls as the order service sees them, errors
    in_process.py        InProcessSmdp: the embedded SM-DP+ as direct store transactions
    es2plus_port.py      Es2PlusSmdp: the port over ES2+ (HTTPS, mutual TLS) to any SM-DP+
    es2plus.py           Es2PlusEndpoint: simsmith's own ES2+ endpoint (entry point, call log)
    orders.py            DownloadOrder, ConfirmOrder, CancelOrder, ReleaseProfile (§5.3.1–4)
    download_progress.py HandleDownloadProgressInfo received from an SM-DP+ (§5.3.5)
    progress_notify.py   HandleDownloadProgressInfo sent to operators, from the outbox (§5.3.5)
    profiles.py          a profile as the functions see it; Es2PlusRefused (SGP.22 codes)
    access.py            who may call which function for which operator (roles, table)
    stock.py             which operator a batch of profiles is stocked for; the order book
    models.py            tables: es2plus_order, es2plus_call, es2plus_stock, es2plus_receiver,
                         es2plus_notification

It may import simcore's store and services below it (db, lifecycle, audit, inventory) and esim/
(ES2+ messages and client, activation codes, dev PKI); never api/ or tools/. The HTTP routes and
the mutual-TLS listener live in api/ (api.routers.es2plus, api.es2plus_listener).
"""
