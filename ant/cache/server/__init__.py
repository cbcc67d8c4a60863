"""The cache's HTTP API: Kubernetes-compatible reads, the job endpoint, probes, metrics.

    app.py        CacheApp: routing and handlers, a ``Request`` in, a ``Reply`` out (no
                  sockets: unit-testable)
    wire.py       requests and replies, content negotiation, lists and Status bodies
    access.py     delegated authentication and authorization (also the controller's)
    discovery.py  just enough of the API server's discovery for ``kubectl --server``
    listener.py   the socket: a TLS ``ThreadingHTTPServer`` with HTTP/1.1 keep-alive

Every data request is authenticated (bearer token, TokenReview) and authorized
(SubjectAccessReview for its verb, resource and namespace) before anything is read, so
the cache never reveals an object its caller could not read from the API server:

    GET /api/v1/namespaces/{ns}/pods[/{name}]        (also services, events)
    GET /api/v1/pods, /api/v1/nodes[/{name}], ...    (cluster-wide: list at cluster scope)
    GET /apis/apps/v1/namespaces/{ns}/statefulsets[/{name}], /apis/apps/v1/statefulsets
    GET /ant/v1/namespaces/{ns}/jobs, /ant/v1/jobs   (?user= &mine=true &selector=
                                                     &status= &view=table|full)
    GET /api, /apis, /api/v1, /apis/apps/v1          (discovery, for kubectl --server)
    GET /metrics                                     (needs get on the non-resource URL)
    GET /livez, /readyz                              (no authentication: probes)

Lists take ``labelSelector`` and ``fieldSelector`` like the API server; every list and
the job endpoint take ``resourceVersion=N``: the answer waits (up to ``rv_wait``) until
the cache has seen N, else 504 with Retry-After (read-your-writes). Answers are
protobuf (``application/vnd.kubernetes.protobuf``, the Kubernetes envelope) or JSON, by
the Accept header as on the API server. Errors are ``meta.v1.Status`` in either form.

Serialized answers are kept per (path, selectors, format) and reused until the tables
they came from change (their generation), so a burst of identical reads costs one
serialization.
"""
