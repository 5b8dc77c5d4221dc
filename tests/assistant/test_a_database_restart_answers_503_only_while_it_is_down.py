"""PostgreSQL stopped and started again under 20 concurrent API clients of a real web server (uvicorn): every
request is answered, those that met the outage with a 503 in OpenAI's shape, and every request begun after
the database is back succeeds (its connections are opened per request, never reused broken, and do not pile up
on idle threads until PostgreSQL refuses more). A signed-in employee's page meanwhile is a short 503 page saying
why."""
import subprocess
import threading
import time

import httpx

from tests.conftest import PROJECT_DIR, child_env, manage_py, stop_process
from tests.private_postgres import PrivatePostgres, free_port

CLIENTS = 20
OUTAGE_S = 3.0
# An employee, her API key and a signed-in session (its cookie), printed as the last two words.
CREATE_EMPLOYEE = (
    "from django.contrib.auth import get_user_model; from django.contrib.sessions.backends.db import SessionStore; "
    "from assistant.services import do_create_api_key; "
    "user = get_user_model().objects.create_user('olga', password='a long pass phrase 42'); "
    "session = SessionStore(); session['_auth_user_id'] = str(user.pk); "
    "session['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'; "
    "session['_auth_user_hash'] = user.get_session_auth_hash(); session.create(); "
    "print(do_create_api_key(user, 'restart test')[1], session.session_key)"
)


def test_a_postgres_restart_under_twenty_clients_gives_503s_only_during_the_outage(tmp_path):
    postgres = PrivatePostgres()
    web = None
    try:
        port = free_port()
        env = child_env(DATABASE_URL=postgres.url, PORT=port)
        subprocess.run(manage_py("migrate", "--noinput"), env=env, cwd=PROJECT_DIR, check=True, capture_output=True, timeout=300)
        api_key, session_key = subprocess.run(manage_py("shell", "-c", CREATE_EMPLOYEE), env=env, cwd=PROJECT_DIR, check=True,
                                              capture_output=True, text=True, timeout=120).stdout.split()[-2:]
        web = subprocess.Popen(manage_py("web", "--host", "127.0.0.1"), env=env, cwd=PROJECT_DIR,
                               stdout=open(tmp_path / "web.log", "wb"), stderr=subprocess.STDOUT)
        url, headers = f"http://127.0.0.1:{port}/v1/models", {"Authorization": f"Bearer {api_key}"}
        wait_for_ok(url, headers, web)
        dashboard = f"http://127.0.0.1:{port}/"
        assert httpx.get(dashboard, cookies={"sessionid": session_key}, timeout=15).status_code == 200

        outcomes, stop = [], threading.Event()
        clients = [threading.Thread(target=client, args=(url, headers, stop, outcomes)) for _ in range(CLIENTS)]
        for thread in clients:
            thread.start()
        time.sleep(2.0)
        connections_under_load = postgres.client_connections()
        went_down = time.monotonic()
        postgres.stop()
        page = httpx.get(dashboard, cookies={"sessionid": session_key}, timeout=15)
        time.sleep(OUTAGE_S)
        postgres.start()
        came_back = time.monotonic()
        time.sleep(4.0)
        stop.set()
        for thread in clients:
            thread.join(timeout=30)
        web_survived = web.poll() is None
    finally:
        if web is not None:
            stop_process(web)
        postgres.close()

    assert web_survived
    assert connections_under_load <= CLIENTS + 2, "the web server keeps connections it does not reuse"
    assert all(not thread.is_alive() for thread in clients), "a client hung"
    unanswered = [outcome for outcome in outcomes if outcome[2] is None]
    assert not unanswered, f"{len(unanswered)} requests got no answer: {unanswered[0][3]}"
    assert {status for _, _, status, _ in outcomes} <= {200, 503}
    unavailable = [outcome for outcome in outcomes if outcome[2] == 503]
    assert unavailable, "no request met the outage"
    outside = [(round(started - went_down, 3), round(ended - went_down, 3), body) for started, ended, _, body in unavailable
               if not (started < came_back and ended > went_down)]
    assert not outside, f"503s outside the outage (seconds since it began; it ended at {came_back - went_down:.3f}): {outside[:3]}"
    assert all(body["error"]["code"] == "database_unavailable" and body["error"]["type"] == "server_error"
               for _, _, _, body in unavailable)
    after = [status for started, _, status, _ in outcomes if started >= came_back]
    assert len(after) >= CLIENTS and set(after) == {200}
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "The database is unavailable" in page.text


def client(url, headers, stop, outcomes):
    """Requests one after another until told to stop (or 2000 of them): (started, ended, status, body)."""
    with httpx.Client(timeout=15) as http:
        for _ in range(2000):
            if stop.is_set():
                return
            started = time.monotonic()
            try:
                response = http.get(url, headers=headers)
                outcomes.append((started, time.monotonic(), response.status_code, response.json()))
            except (httpx.HTTPError, ValueError) as error:
                outcomes.append((started, time.monotonic(), None, repr(error)))
            time.sleep(0.05)


def wait_for_ok(url, headers, process, timeout_s=90):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the web server exited"
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer 200 within {timeout_s} s")
