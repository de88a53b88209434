"""Helpers shared by the tests (importable as `support.<module>`: tests/ is on sys.path through the rootdir
conftest): the HTTP replay server and the recorded responses, tiny local HTTP servers, the S3 fault proxy,
the fault driver (a child process), the bundled warehouse, and the pipeline-step runners."""
