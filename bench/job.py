#!/usr/bin/python3
"""The whole job with a requests.Session, as a Python user writes it.

    bench/job.py URL USER PASSWORD_FILE [COUNT]

Logs in, lists every image, deletes the COUNT oldest images (default 500) that are
neither dangling nor DSM images, logs out. The session keeps one connection open.
Each response is checked for "success": true, as synosh checks it.
"""

import sys

import requests


def call(session: requests.Session, http_method: str, endpoint: str, **params: object) -> dict:
    if http_method == "GET":
        reply = session.get(endpoint, params=params)
    else:
        reply = session.post(endpoint, data=params)
    reply.raise_for_status()
    document = reply.json()
    if not document.get("success"):
        raise SystemExit(f"job.py: {params.get('method')} failed: {document.get('error')}")
    return document.get("data") or {}


def main() -> None:
    url, user, password_file = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    endpoint = url + "/webapi/entry.cgi"
    with open(password_file, encoding="utf-8") as handle:
        password = handle.readline().rstrip("\r\n")

    with requests.Session() as session:
        login = call(session, "POST", endpoint, api="SYNO.API.Auth", version=7, method="login",
                     account=user, passwd=password, format="sid", enable_syno_token="yes")
        session.cookies.set("id", login["sid"])
        session.headers["X-SYNO-TOKEN"] = login["synotoken"]

        listing = call(session, "GET", endpoint, api="SYNO.Docker.Image", version=1, method="list",
                       offset=0, limit=-1, show_dsm="false")
        candidates = [image for image in listing["images"]
                      if image["repository"] != "<none>" and not image["is_ddsm"]]
        candidates.sort(key=lambda image: (image["created"], image["repository"], image["tag"]))
        for image in candidates[:count]:
            call(session, "POST", endpoint, api="SYNO.Docker.Image", version=1, method="delete",
                 repository=image["repository"], tag=image["tag"], force="true")

        call(session, "POST", endpoint, api="SYNO.API.Auth", version=7, method="logout")


if __name__ == "__main__":
    main()
