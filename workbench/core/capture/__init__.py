"""Capture mode: ``workbench proxy``, a local endpoint per provider that forwards an application's calls to the
provider and traces each chat call as a workbench call (:mod:`.routes`: which upstream a path goes to;
:mod:`.wire_request`: the request body as a :class:`~workbench.core.request.ChatRequest`; :mod:`.recording`: the
bytes passing through read into a :class:`~workbench.core.call_record.CallRecord`; :mod:`.app`: the ASGI app;
:mod:`.server`: uvicorn around it)."""
