from typing import Any
def test_probe(artifact_env, airflow_db) -> None:
    from fastapi.testclient import TestClient
    from airflow.api_fastapi.app import create_app
    app = create_app()
    c = TestClient(app)
    r = c.get("/artifacts/api/runs", params={"group": "x/y"})
    print("ANON", r.status_code, r.text[:200])
    r = c.post("/auth/token", json={"username": "admin", "password": "admin-pw-for-tests"})
    print("TOKEN", r.status_code, r.text[:300])
    tok = r.json()["access_token"]
    r = c.get("/artifacts/api/runs", params={"group": "x/y"}, headers={"Authorization": f"Bearer {tok}"})
    print("AUTH", r.status_code, r.text[:200])
    r = c.get("/api/v2/plugins", headers={"Authorization": f"Bearer {tok}"})
    print("PLUGINS", r.status_code, r.text[:1500])
