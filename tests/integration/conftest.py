# pytest finds fixtures here; they live in harness.py.
import pytest

from harness import fresh_server, server  # noqa: F401


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report gets the tail of its server's log."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for name in ("server", "fresh_server"):
            srv = getattr(item, "funcargs", {}).get(name)
            if srv is not None and hasattr(srv, "log_tail"):
                report.sections.append(("xmppd log (%s, %s)" % (srv.dir, srv.backend),
                                        srv.log_tail(60)))
