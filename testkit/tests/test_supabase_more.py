"""Less common PostgREST features the stores may use, and PostgREST's error mapping."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest
from llm_common_testkit.postgrest import SupabaseServer
from llm_common_testkit.postgrest._errors import status_for
from postgrest.exceptions import APIError

pytestmark = pytest.mark.postgres

SCHEMA = """
create table parents (id integer primary key, label text);
create table kids (
    id integer primary key,
    parent_id integer not null references parents (id),
    name text not null,
    nick text,
    score numeric default 10
);
grant select, insert, update, delete on parents, kids to service_role;
grant select on parents to anon;
insert into parents values (1, 'one'), (2, 'two');
insert into kids values (1, 1, 'ann', null, 1), (2, 1, 'bob', 'b', 2), (3, 2, 'cy', null, 3);
create function kids_of(pid integer) returns setof kids
    language sql stable as $$ select * from kids where parent_id = pid $$;
create function kid_count() returns bigint language sql stable as $$ select count(*) from kids $$;
create function touch() returns integer
    language sql as $$ update kids set score = score where id = 1 returning 1 $$;
grant execute on all functions in schema public to service_role, anon;
"""


@pytest.fixture
def server(supabase_server: SupabaseServer) -> SupabaseServer:
    with psycopg.connect(supabase_server.db_url, autocommit=True) as conn:
        conn.execute(SCHEMA.encode())
    return supabase_server


def test_head_count_range_and_negation(server: SupabaseServer) -> None:
    with server.client() as client:
        head = client.table("kids").select("*", count="exact", head=True).execute()
        assert head.count == 3
        assert head.data == []
        page = client.table("kids").select("name").order("id").range(1, 2).execute()
        assert [r["name"] for r in page.data] == ["bob", "cy"]
        res = client.table("kids").select("name").not_.eq("name", "ann").order("id").execute()
        assert [r["name"] for r in res.data] == ["bob", "cy"]
        res = client.table("kids").select("name").like_any_of("name", "a*,c*").order("id").execute()
        assert [r["name"] for r in res.data] == ["ann", "cy"]
        res = client.table("kids").select("who:name,nick").eq("id", 1).execute()
        assert res.data == [{"who": "ann", "nick": None}]
        stripped = client.table("kids").select("name,nick").eq("id", 1).strip_nulls().execute()
        assert stripped.data == [{"name": "ann"}]


def test_rpc_get_count_and_filters(server: SupabaseServer) -> None:
    with server.client() as client:
        assert client.rpc("kid_count", {}, get=True).execute().data == 3
        res = client.rpc("kids_of", {"pid": 1}, count="exact").order("id", desc=True).execute()
        assert [r["name"] for r in res.data] == ["bob", "ann"]
        assert res.count == 2
        with pytest.raises(APIError) as info:
            client.rpc("touch", {}, get=True).execute()  # GET is read-only, like PostgREST
        assert info.value.code == "25006"
        assert client.rpc("touch", {}).execute().data == 1


def test_missing_default_and_bulk_nulls(server: SupabaseServer) -> None:
    with server.client() as client:
        rows = [
            {"id": 10, "parent_id": 2, "name": "dee"},
            {"id": 11, "parent_id": 2, "name": "eve", "score": 5},
        ]
        res = client.table("kids").insert(rows, default_to_null=False).execute()
        assert sorted((r["id"], r["score"]) for r in res.data) == [(10, 10), (11, 5)]
        rows = [
            {"id": 12, "parent_id": 2, "name": "fay"},
            {"id": 13, "parent_id": 2, "name": "gus", "score": 5},
        ]
        res = client.table("kids").insert(rows).execute()  # bulk: missing keys are NULL
        assert sorted((r["id"], r["score"]) for r in res.data) == [(12, None), (13, 5)]
        minimal = (
            client.table("kids")
            .insert({"id": 14, "parent_id": 1, "name": "hal"}, returning="minimal")
            .execute()
        )
        assert minimal.data == []


def test_error_statuses(server: SupabaseServer) -> None:
    with server.client() as client:
        with pytest.raises(APIError) as info:
            client.table("kids").insert({"id": 20, "parent_id": 99, "name": "orphan"}).execute()
        assert info.value.code == "23503"
        with pytest.raises(APIError) as info:
            client.table("kids").insert({"id": 21, "parent_id": 1}).execute()
        assert info.value.code == "23502"
        with pytest.raises(APIError) as info:
            client.table("nope").select("*").execute()
        assert info.value.code == "42P01"
    with httpx.Client(base_url=server.rest_url) as http:
        service = {"apikey": server.service_key, "Authorization": f"Bearer {server.service_key}"}
        r = http.post("/kids", json={"id": 1, "parent_id": 1, "name": "dup"}, headers=service)
        assert r.status_code == 409
        assert set(r.json()) == {"code", "message", "details", "hint"}
        r = http.post("/kids", json={"id": 30, "parent_id": 99, "name": "x"}, headers=service)
        assert (r.status_code, r.json()["code"]) == (409, "23503")
        r = http.get("/nope", headers=service)
        assert r.status_code == 404
        r = http.get("/kids", headers={**service, "Accept-Profile": "private"})
        assert (r.status_code, r.json()["code"]) == (406, "PGRST106")
        anon = {"apikey": server.anon_key}
        r = http.get("/kids", headers=anon)
        assert (r.status_code, r.json()["code"]) == (401, "42501")
        user = {
            "apikey": server.anon_key,
            "Authorization": f"Bearer {server.jwt_for(uuid.uuid4())}",
        }
        r = http.get("/kids", headers=user)
        assert (r.status_code, r.json()["code"]) == (403, "42501")
        r = http.get(
            "/kids?id=eq.1", headers={**service, "Accept": "application/vnd.pgrst.object+json"}
        )
        assert r.status_code == 200
        assert r.json()["name"] == "ann"
        r = http.get("/kids?id=zz.1", headers=service)
        assert (r.status_code, r.json()["code"]) == (400, "PGRST100")
        r = http.get(
            "/kids?select=name&order=id.desc", headers={**service, "Prefer": "count=exact"}
        )
        assert r.headers["content-range"] == "0-2/3"
        r = http.delete("/kids?id=eq.3", headers=service)
        assert r.status_code == 204


@pytest.mark.parametrize(
    ("sqlstate", "role", "status"),
    [
        ("23505", "service_role", 409),
        ("23503", "authenticated", 409),
        ("42501", "anon", 401),
        ("42501", "authenticated", 403),
        ("42P01", "anon", 404),
        ("P0001", "service_role", 400),
        ("22P02", "service_role", 400),
        ("23514", "service_role", 400),
        ("PT402", "service_role", 402),
        ("53300", "service_role", 503),
        ("XX000", "service_role", 500),
    ],
)
def test_status_mapping(sqlstate: str, role: str, status: int) -> None:
    assert status_for(sqlstate, role) == status
