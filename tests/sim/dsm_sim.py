#!/usr/bin/env python3
"""Simulate the Synology DSM web API that synosh drives, for tests.

The simulator serves SYNO.API.Info, SYNO.API.Auth and the SYNO.Docker.* APIs of one image
API dialect (the user's API document, or DSM 7 Container Manager) over HTTP or HTTPS from a
JSON fixture. It records every /webapi request, can inject faults,
and exposes control endpoints under /_sim/. README.md beside this file describes the
options, the fixture format, the control endpoints and the error codes.

Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import http.server
import itertools
import json
import logging
import math
import re
import secrets
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable

LOG = logging.getLogger("dsm_sim")

DEFAULT_FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "homelab.json"

# DSM error codes. 1xx and 4xx are DSM's own, and so are 1052 and 1053 of Container
# Manager's registry search. The other 100x codes are this simulator's choice for the
# image API, because the user's API document defines none.
ERR_UNKNOWN = 100
ERR_MISSING_ENVELOPE = 101
ERR_NO_SUCH_API = 102
ERR_NO_SUCH_METHOD = 103
ERR_VERSION_NOT_SUPPORTED = 104
ERR_BAD_PARAMETER = 114
ERR_INVALID_SESSION = 119
ERR_LOGIN_FAILED = 400
ERR_ACCOUNT_DISABLED = 401
ERR_OTP_REQUIRED = 403
ERR_OTP_REJECTED = 404
ERR_IMAGE_NOT_FOUND = 1001
ERR_IMAGE_IN_USE = 1002
ERR_REGISTRY_EXISTS = 1003
ERR_REGISTRY_NOT_FOUND = 1004
ERR_REGISTRY_PROTECTED = 1005
ERR_TASK_NOT_FOUND = 1006
ERR_REGISTRY_REQUEST_FAILED = 1052
ERR_REGISTRY_NO_SEARCH = 1053

# Hosts whose registries get a search API when a fixture registry does not set `searchable`.
DOCKER_HUB_HOSTS = ("registry-1.docker.io", "index.docker.io", "registry.hub.docker.com")

# Request headers copied into each request record, when present.
RECORDED_HEADERS = ("X-SYNO-TOKEN", "Cookie", "Content-Type", "User-Agent")

# Docker prints this for both the repository and the tag of a dangling image.
NONE_NAME = "<none>"

FAULT_KINDS = ("html", "truncate", "cut", "drop", "delay", "http_status", "dsm_error", "body")

PORTAL_PAGE = """<!DOCTYPE html>
<html class="img-no-dragging">
<head>
<meta http-equiv="X-UA-Compatible" content="IE=edge" />
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0, maximum-scale=1.0, user-scalable=no">
<meta name="description" content="DiskStation provides a full-featured network attached storage (NAS) solution to help you manage, backup and share data among Windows, Mac and Linux easily.">
<meta name="apple-itunes-app" content="app-id=1142556012">
<title>Synology DiskStation</title>
<link rel="shortcut icon" href="webman/favicon.ico?v=69057" />
<link rel="apple-touch-icon" sizes="180x180" href="webman/resources/images/icon_dsm_180.png?v=69057" />
<link rel="stylesheet" type="text/css" href="scripts/ext-3/resources/css/ext-all.css?v=69057" />
<link rel="stylesheet" type="text/css" href="webman/resources/css/desktop.css?v=69057" />
<link rel="stylesheet" type="text/css" href="webman/sds/sds.css?v=69057" />
</head>
<body>
<noscript class="sds-noscript"><div class="sds-noscript-text">Your browser does not support JavaScript. Please enable JavaScript to use DiskStation Manager.</div></noscript>
<div id="sds-login-vue-inst"></div>
<script type="text/javascript" src="webapi/entry.cgi?api=SYNO.Core.Desktop.Defs&amp;version=1&amp;method=getjs&amp;v=69057"></script>
<script type="text/javascript" src="webapi/entry.cgi?api=SYNO.Core.Desktop.JSUIString&amp;version=1&amp;method=getjs&amp;lang=enu&amp;v=69057"></script>
<script type="text/javascript" src="webman/login.js?v=69057"></script>
</body>
</html>
"""


def render_error_page(status: int) -> str:
    """Render the short HTML page that DSM's nginx front end sends with an error status."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


class DsmError(Exception):
    """A DSM API failure, sent as {"success":false,"error":{"code":N,...}}.

    `reason` goes only to the --verbose log, never to the client.
    """

    def __init__(self, code: int, reason: str = "", errors: Any = None):
        super().__init__(f"DSM error {code}: {reason}")
        self.code = code
        self.reason = reason
        self.errors = errors


class FixtureError(Exception):
    """An invalid fixture file."""


# ---------------------------------------------------------------------------
# Fixture loading


@dataclasses.dataclass
class User:
    account: str
    password: str
    otp: str | None = None
    disabled: bool = False


@dataclasses.dataclass
class Fixture:
    """A validated fixture, with image ages already turned into `created` timestamps."""

    users: dict[str, User]
    images: list[dict[str, Any]]
    containers: list[dict[str, Any]]
    registries: list[dict[str, Any]]
    search_catalog: list[dict[str, Any]]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise FixtureError(message)


def load_fixture(path: Path, now: float) -> Fixture:
    """Read and validate a fixture file.

    `age_days` becomes `created = int(now - age_days * 86400)`. An image with neither
    `created` nor `age_days` gets `created = 0`, which DSM clients must treat as unknown.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as error:
        raise FixtureError(f"cannot read fixture {path}: {error}") from error
    except json.JSONDecodeError as error:
        raise FixtureError(f"fixture {path} is not valid JSON: {error}") from error
    _require(isinstance(document, dict), f"fixture {path}: the top level must be a JSON object")

    users: dict[str, User] = {}
    for index, entry in enumerate(document.get("users", [])):
        where = f"fixture {path}: users[{index}]"
        _require(isinstance(entry, dict), f"{where} must be an object")
        _require(isinstance(entry.get("account"), str) and entry["account"] != "", f"{where}: account must be a non-empty string")
        _require(isinstance(entry.get("password"), str), f"{where}: password must be a string")
        otp = entry.get("otp")
        _require(otp is None or (isinstance(otp, str) and otp != ""), f"{where}: otp must be a non-empty string")
        _require(entry["account"] not in users, f"{where}: duplicate account {entry['account']!r}")
        users[entry["account"]] = User(entry["account"], entry["password"], otp, bool(entry.get("disabled", False)))

    images = []
    names_seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(document.get("images", [])):
        images.append(_load_image(entry, f"fixture {path}: images[{index}]", now, names_seen))

    containers = []
    for index, entry in enumerate(document.get("containers", [])):
        where = f"fixture {path}: containers[{index}]"
        _require(isinstance(entry, dict), f"{where} must be an object")
        for field in ("name", "image", "status"):
            _require(isinstance(entry.get(field), str) and entry[field] != "", f"{where}: {field} must be a non-empty string")
        containers.append({"name": entry["name"], "image": entry["image"], "status": entry["status"]})

    registries = []
    for index, entry in enumerate(document.get("registries", [])):
        where = f"fixture {path}: registries[{index}]"
        _require(isinstance(entry, dict), f"{where} must be an object")
        _require(isinstance(entry.get("name"), str) and isinstance(entry.get("url"), str), f"{where}: name and url must be strings")
        searchable = entry.get("searchable")
        _require(searchable is None or isinstance(searchable, bool), f"{where}: searchable must be true or false")
        if searchable is None:
            searchable = urllib.parse.urlsplit(entry["url"]).hostname in DOCKER_HUB_HOSTS
        registries.append({
            "name": entry["name"],
            "url": entry["url"],
            "is_default": bool(entry.get("is_default", False)),
            "username": entry.get("username"),
            "password": entry.get("password"),
            "searchable": searchable,
            "enable_trust_SSC": False,
        })

    catalog = []
    for index, entry in enumerate(document.get("search_catalog", [])):
        where = f"fixture {path}: search_catalog[{index}]"
        _require(isinstance(entry, dict) and isinstance(entry.get("name"), str), f"{where}: name must be a string")
        catalog.append({
            "name": entry["name"],
            "description": str(entry.get("description", "")),
            "star_count": int(entry.get("star_count", 0)),
            "is_official": bool(entry.get("is_official", False)),
            "is_automated": bool(entry.get("is_automated", False)),
        })

    return Fixture(users, images, containers, registries, catalog)


def _load_image(entry: Any, where: str, now: float, names_seen: set[tuple[str, str]]) -> dict[str, Any]:
    _require(isinstance(entry, dict), f"{where} must be an object")
    _require(isinstance(entry.get("id"), str) and re.fullmatch(r"sha256:[0-9a-f]{64}", entry["id"]) is not None,
             f"{where}: id must be 'sha256:' followed by 64 lowercase hex digits")
    for field in ("repository", "tag"):
        _require(isinstance(entry.get(field), str) and entry[field] != "", f"{where}: {field} must be a non-empty string")
    _require(isinstance(entry.get("size"), int) and entry["size"] >= 0, f"{where}: size must be a non-negative integer (bytes)")

    if "created" in entry:
        _require(isinstance(entry["created"], int) and entry["created"] >= 0, f"{where}: created must be a non-negative integer (Unix seconds)")
        created = entry["created"]
    elif "age_days" in entry:
        age = entry["age_days"]
        _require(isinstance(age, (int, float)) and age >= 0, f"{where}: age_days must be a non-negative number")
        created = int(now - age * 86400)
    else:
        created = 0

    name = (entry["repository"], entry["tag"])
    if NONE_NAME not in name:
        _require(name not in names_seen, f"{where}: duplicate image {name[0]}:{name[1]}")
        names_seen.add(name)

    return {
        "id": entry["id"],
        "repository": entry["repository"],
        "tag": entry["tag"],
        "size": entry["size"],
        "created": created,
        "is_ddsm": bool(entry.get("is_ddsm", False)),
        "upgradable": bool(entry.get("upgradable", False)),
    }


# ---------------------------------------------------------------------------
# Inventory: the NAS state that every dialect reads and changes


@dataclasses.dataclass
class PendingPull:
    task_id: str
    repository: str
    tag: str
    registry: str | None
    due: float


def split_image_reference(reference: str) -> tuple[str, str]:
    """Split "repository:tag" into its parts. A reference without a tag means "latest"."""
    last_part = reference.rsplit("/", 1)[-1]
    if ":" in last_part:
        repository, tag = reference.rsplit(":", 1)
        return repository, tag
    return reference, "latest"


class Inventory:
    """Images, containers, registries and the search catalog of one simulated NAS.

    The Simulator calls it only with its lock held, because it is not thread-safe.
    """

    def __init__(self, fixture: Fixture):
        self.images: list[dict[str, Any]] = copy.deepcopy(fixture.images)
        self.containers: list[dict[str, Any]] = copy.deepcopy(fixture.containers)
        self.registries: list[dict[str, Any]] = copy.deepcopy(fixture.registries)
        self.search_catalog: list[dict[str, Any]] = copy.deepcopy(fixture.search_catalog)
        self.pending_pulls: list[PendingPull] = []
        # Tasks started through the Container Manager dialect, by task id, with their poll counts.
        self.tasks: dict[str, dict[str, Any]] = {}
        self.next_task_number = 1
        # Sorted views, rebuilt after a change, so paging through a large inventory stays fast.
        self._sorted_images: list[dict[str, Any]] | None = None
        self._sorted_images_without_ddsm: list[dict[str, Any]] | None = None

    def _changed(self) -> None:
        self._sorted_images = None
        self._sorted_images_without_ddsm = None

    def sorted_images(self, *, include_ddsm: bool = True) -> list[dict[str, Any]]:
        """Return the images ordered by repository, then tag (stable for equal names)."""
        if self._sorted_images is None:
            self._sorted_images = sorted(self.images, key=lambda image: (image["repository"], image["tag"]))
        if include_ddsm:
            return self._sorted_images
        if self._sorted_images_without_ddsm is None:
            self._sorted_images_without_ddsm = [image for image in self._sorted_images if not image["is_ddsm"]]
        return self._sorted_images_without_ddsm

    def find_image(self, repository: str, tag: str) -> dict[str, Any] | None:
        """Find an image by name. A `<none>` repository or tag names no single image, so it never matches."""
        if NONE_NAME in (repository, tag):
            return None
        for image in self.images:
            if image["repository"] == repository and image["tag"] == tag:
                return image
        return None

    def find_dangling(self, image_id: str) -> dict[str, Any] | None:
        """Find an image whose repository or tag is `<none>` by its id."""
        for image in self.images:
            if image["id"] == image_id and NONE_NAME in (image["repository"], image["tag"]):
                return image
        return None

    def containers_using(self, repository: str, tag: str) -> list[str]:
        return [
            container["name"]
            for container in self.containers
            if split_image_reference(container["image"]) == (repository, tag)
        ]

    def delete_image(self, image: dict[str, Any]) -> None:
        self.images = [candidate for candidate in self.images if candidate is not image]
        self._changed()

    def new_task_id(self, kind: str) -> str:
        task_id = f"{kind}_task_{self.next_task_number}"
        self.next_task_number += 1
        return task_id

    def start_pull(self, repository: str, tag: str, registry: str | None, due: float) -> str:
        task_id = self.new_task_id("pull")
        self.pending_pulls.append(PendingPull(task_id, repository, tag, registry, due))
        return task_id

    def is_pending(self, task_id: str) -> bool:
        return any(pull.task_id == task_id for pull in self.pending_pulls)

    def rebuild_image(self, image: dict[str, Any], seed: str, created: int) -> None:
        """Give an image a newer build: a new id, a size within 5% of the old one, and `created`."""
        digest = hashlib.sha256(seed.encode()).digest()
        factor = 0.95 + (digest[0] / 255) * 0.1
        image["id"] = "sha256:" + hashlib.sha256(digest).hexdigest()
        image["size"] = max(1, int(image["size"] * factor))
        image["created"] = created
        image["upgradable"] = False
        self._changed()

    def containers_using_image(self, image: dict[str, Any]) -> list[str]:
        return self.containers_using(image["repository"], image["tag"])

    def apply_due_pulls(self, now: float) -> None:
        """Add or refresh the image of every pull whose delay has passed."""
        if not self.pending_pulls:
            return
        due_pulls = [pull for pull in self.pending_pulls if pull.due <= now]
        if not due_pulls:
            return
        self.pending_pulls = [pull for pull in self.pending_pulls if pull.due > now]
        for pull in due_pulls:
            self._finish_pull(pull)
        self._changed()

    def _finish_pull(self, pull: PendingPull) -> None:
        digest = hashlib.sha256(f"pull/{pull.task_id}/{pull.repository}:{pull.tag}/{pull.due}".encode()).digest()
        new_id = "sha256:" + hashlib.sha256(digest).hexdigest()
        existing = self.find_image(pull.repository, pull.tag)
        if existing is not None:
            # A newer build of the same image is a little larger or smaller than the old one.
            self.rebuild_image(existing, f"pull/{pull.task_id}/{pull.repository}:{pull.tag}/{pull.due}", int(pull.due))
            return
        size = 5 * 1024 * 1024 + int.from_bytes(digest[:4], "big") % (400 * 1024 * 1024)
        self.images.append({
            "id": new_id,
            "repository": pull.repository,
            "tag": pull.tag,
            "size": size,
            "created": int(pull.due),
            "is_ddsm": False,
            "upgradable": False,
        })

    def find_registry(self, name: str) -> dict[str, Any] | None:
        for registry in self.registries:
            if registry["name"] == name:
                return registry
        return None

    def snapshot(self) -> dict[str, Any]:
        """Return the whole state for GET /_sim/state, registry credentials included."""
        return {
            "images": [dict(image) for image in self.sorted_images()],
            "containers": [dict(container) for container in self.containers],
            "registries": [dict(registry) for registry in self.registries],
            "pending_pulls": [dataclasses.asdict(pull) for pull in self.pending_pulls],
            "tasks": copy.deepcopy(self.tasks),
        }


# ---------------------------------------------------------------------------
# Dialects: the SYNO.Docker.* APIs as one kind of NAS speaks them


@dataclasses.dataclass
class ApiCall:
    """One authenticated call, as passed to a dialect handler."""

    params: Any  # the dialect's parameter reader, such as FormParams
    inventory: Inventory
    http_method: str
    now: float
    pull_delay: float
    task_polls: int = 0


Handler = Callable[[ApiCall], "dict[str, Any] | list[Any] | None"]


@dataclasses.dataclass
class ApiSpec:
    """One API as SYNO.API.Info reports it, with the handlers of its methods."""

    name: str
    path: str
    min_version: int
    max_version: int
    request_format: str | None
    methods: dict[str, Handler]
    # Methods that change state. The Container Manager dialect checks X-SYNO-TOKEN on them
    # whatever the HTTP method.
    write_methods: frozenset[str] = frozenset()

    def info_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": self.path, "minVersion": self.min_version, "maxVersion": self.max_version}
        if self.request_format is not None:
            entry["requestFormat"] = self.request_format
        return entry


class FormParams:
    """Parameters sent as plain form values: `repository=nginx`, `limit=10`, `force=true`.

    An empty value counts as missing. A missing required value or a malformed one raises 114.
    """

    def __init__(self, values: dict[str, str]):
        self.values = values

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.values.get(name, "")
        if value == "":
            if required:
                raise DsmError(ERR_BAD_PARAMETER, f"missing parameter {name}")
            return default
        return value

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        value = self.values.get(name, "")
        if value == "":
            return default
        if re.fullmatch(r"-?[0-9]+", value) is None:
            raise DsmError(ERR_BAD_PARAMETER, f"parameter {name}={value!r} is not an integer")
        number = int(value)
        if number < minimum:
            raise DsmError(ERR_BAD_PARAMETER, f"parameter {name}={number} is below {minimum}")
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.values.get(name, "")
        if value == "":
            return default
        if value in ("true", "1"):
            return True
        if value in ("false", "0"):
            return False
        raise DsmError(ERR_BAD_PARAMETER, f"parameter {name}={value!r} is not true, false, 1 or 0")


# Docker reference grammar, simplified: an optional registry host with an optional port,
# then lowercase path components separated by "/".
REPOSITORY_PATTERN = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
IMAGE_ID_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")


class DocumentDialect:
    """The image API exactly as the user's API document describes it.

    All three APIs live on entry.cgi, version 1 only. Values are plain form values, so
    Info reports no requestFormat for them.
    """

    name = "document"
    rejects_json_body = False

    def api_specs(self) -> list[ApiSpec]:
        return [
            ApiSpec("SYNO.Docker.Image", "entry.cgi", 1, 1, None, {
                "list": self.list_images,
                "get": self.get_image,
                "pull": self.pull_image,
                "delete": self.delete_image,
            }),
            ApiSpec("SYNO.Docker.Image.Search", "entry.cgi", 1, 1, None, {"search": self.search_images}),
            ApiSpec("SYNO.Docker.Image.Registry", "entry.cgi", 1, 1, None, {
                "list": self.list_registries,
                "add": self.add_registry,
            }),
        ]

    def read_params(self, values: dict[str, str]) -> FormParams:
        return FormParams(values)

    @staticmethod
    def _image_fields(image: dict[str, Any], *, with_ddsm: bool) -> dict[str, Any]:
        fields = {
            "id": image["id"],
            "repository": image["repository"],
            "tag": image["tag"],
            "size": image["size"],
            "created": image["created"],
        }
        if with_ddsm:
            fields["is_ddsm"] = image["is_ddsm"]
        return fields

    def list_images(self, call: ApiCall) -> dict[str, Any]:
        offset = call.params.integer("offset", 0, minimum=0)
        limit = call.params.integer("limit", -1, minimum=-1)
        show_dsm = call.params.boolean("show_dsm", False)

        images = call.inventory.sorted_images(include_ddsm=show_dsm)
        page = images[offset:] if limit == -1 else images[offset:offset + limit]
        return {"total": len(images), "images": [self._image_fields(image, with_ddsm=True) for image in page]}

    def get_image(self, call: ApiCall) -> dict[str, Any]:
        repository = call.params.string("repository", required=True)
        tag = call.params.string("tag", required=True)
        image = call.inventory.find_image(repository, tag)
        if image is None:
            raise DsmError(ERR_IMAGE_NOT_FOUND, f"no image {repository}:{tag}")
        return {"image": self._image_fields(image, with_ddsm=False)}

    def pull_image(self, call: ApiCall) -> dict[str, Any]:
        repository = call.params.string("repository", required=True)
        tag = call.params.string("tag", "latest")
        registry = call.params.string("registry")
        if REPOSITORY_PATTERN.fullmatch(repository) is None:
            raise DsmError(ERR_BAD_PARAMETER, f"invalid repository name {repository!r}")
        if TAG_PATTERN.fullmatch(tag) is None:
            raise DsmError(ERR_BAD_PARAMETER, f"invalid tag {tag!r}")
        task_id = call.inventory.start_pull(repository, tag, registry, call.now + call.pull_delay)
        return {"task_id": task_id}

    def delete_image(self, call: ApiCall) -> None:
        repository = call.params.string("repository", required=True)
        tag = call.params.string("tag", required=True)
        force = call.params.boolean("force", False)
        image = call.inventory.find_image(repository, tag)
        if image is None and tag == NONE_NAME and IMAGE_ID_PATTERN.fullmatch(repository):
            # A dangling image has no name, so it is deleted by id, as `docker rmi <id>` does.
            image = call.inventory.find_dangling(repository)
        if image is None:
            raise DsmError(ERR_IMAGE_NOT_FOUND, f"no image {repository}:{tag}")
        users = call.inventory.containers_using(repository, tag)
        if users and not force:
            raise DsmError(ERR_IMAGE_IN_USE, f"image {repository}:{tag} is used by containers {users}")
        call.inventory.delete_image(image)
        return None

    def search_images(self, call: ApiCall) -> dict[str, Any]:
        query = call.params.string("query", required=True)
        # NOTE: the catalog is one list, so the optional `registry` parameter does not change the result.
        needle = query.casefold()
        return {"images": [dict(entry) for entry in call.inventory.search_catalog if needle in entry["name"].casefold()]}

    def list_registries(self, call: ApiCall) -> dict[str, Any]:
        return {"registries": [
            {"name": registry["name"], "url": registry["url"], "is_default": registry["is_default"]}
            for registry in call.inventory.registries
        ]}

    def add_registry(self, call: ApiCall) -> None:
        name = call.params.string("name", required=True)
        url = call.params.string("url", required=True)
        username = call.params.string("username")
        password = call.params.string("password")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DsmError(ERR_BAD_PARAMETER, f"registry url {url!r} is not an http or https URL")
        if call.inventory.find_registry(name) is not None:
            raise DsmError(ERR_REGISTRY_EXISTS, f"registry {name!r} already exists")
        call.inventory.registries.append({
            "name": name, "url": url, "is_default": False, "username": username, "password": password,
            "searchable": False, "enable_trust_SSC": False,
        })
        return None


class _Unquoted:
    """A parameter value that is not valid JSON, such as `repository=nginx` without quotes."""

    def __init__(self, text: str):
        self.text = text


_MISSING = object()


class JsonParams:
    """Parameters sent as JSON literals, as APIs with requestFormat JSON take them.

    `repository="nginx"`, `limit=-1`, `show_dsm=false`, `images=[{...}]`. A missing required
    value raises 114, and so does a value of the wrong JSON type, such as a number sent as a
    string (`limit="10"`). A value that is not valid JSON passes as a string, because DSM
    accepts unquoted strings, but a string that is valid JSON (`123`, `true`) then has the
    wrong type.
    """

    def __init__(self, values: dict[str, str]):
        self.values = values

    def _decode(self, name: str, required: bool) -> Any:
        raw = self.values.get(name, "")
        if raw == "":
            if required:
                raise DsmError(ERR_BAD_PARAMETER, f"missing parameter {name}")
            return _MISSING
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return _Unquoted(raw)

    def has(self, name: str) -> bool:
        return self.values.get(name, "") != ""

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self._decode(name, required)
        if value is _MISSING:
            return default
        if isinstance(value, _Unquoted):
            return value.text
        if not isinstance(value, str):
            raise DsmError(ERR_BAD_PARAMETER, f"parameter {name}={self.values[name]!r} is not a JSON string")
        return value

    def integer(self, name: str, default: int | None = None, *, required: bool = False, minimum: int = 0) -> int | None:
        value = self._decode(name, required)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise DsmError(ERR_BAD_PARAMETER, f"parameter {name}={self.values[name]!r} is not a JSON integer")
        if value < minimum:
            raise DsmError(ERR_BAD_PARAMETER, f"parameter {name}={value} is below {minimum}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._decode(name, False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise DsmError(ERR_BAD_PARAMETER, f"parameter {name}={self.values[name]!r} is not true or false")
        return value

    def array(self, name: str) -> list[Any]:
        value = self._decode(name, True)
        if not isinstance(value, list):
            raise DsmError(ERR_BAD_PARAMETER, f"parameter {name} is not a JSON array")
        return value


def _image_digest(image: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(f"digest/{image['id']}".encode()).hexdigest()


class ContainerManagerDialect:
    """The image APIs as DSM 6 Docker and DSM 7 Container Manager speak them.

    Every SYNO.Docker.* API is on entry.cgi with requestFormat JSON, so parameters are JSON
    literals. SYNO.Docker.Registry replaces SYNO.Docker.Image.Search and
    SYNO.Docker.Image.Registry. Write methods need the session's X-SYNO-TOKEN whatever the
    HTTP method, and a JSON request body gets 101.
    """

    name = "container-manager"
    rejects_json_body = True

    # Status replies with finished=false that a task gives before it may report
    # finished=true, unless /_sim/config sets task_polls.
    DEFAULT_TASK_POLLS = 2

    def api_specs(self) -> list[ApiSpec]:
        return [
            ApiSpec("SYNO.Docker.Image", "entry.cgi", 1, 1, "JSON", {
                "list": self.list_images,
                "get": self.get_image,
                "pull_start": self.pull_start,
                "pull_status": self.pull_status,
                "upgrade_start": self.upgrade_start,
                "upgrade_status": self.upgrade_status,
                "delete": self.delete_images,
                "prune": self.prune_images,
            }, write_methods=frozenset({"pull_start", "upgrade_start", "delete", "prune"})),
            ApiSpec("SYNO.Docker.Registry", "entry.cgi", 1, 2, "JSON", {
                "get": self.get_registries,
                "search": self.search_registry,
                "tags": self.registry_tags,
                "create": self.create_registry,
                "set": self.set_registry,
                "delete": self.delete_registry,
                "using": self.use_registry,
            }, write_methods=frozenset({"create", "set", "delete", "using"})),
            ApiSpec("SYNO.Docker.Container", "entry.cgi", 1, 1, "JSON", {"list": self.list_containers}),
            # Listed as a DSM 7 NAS lists them. synosh calls neither, so they have no methods (103).
            ApiSpec("SYNO.Docker.Project", "entry.cgi", 1, 1, "JSON", {}),
            ApiSpec("SYNO.Docker.Utils", "entry.cgi", 1, 1, "JSON", {}),
        ]

    def read_params(self, values: dict[str, str]) -> JsonParams:
        return JsonParams(values)

    # -- SYNO.Docker.Image -------------------------------------------------

    @staticmethod
    def _image_entries(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Group the tags of one id and repository into one entry with a `tags` array.

        A dangling image is an entry of its own with repository `<none>` and no tags.
        """
        entries: list[dict[str, Any]] = []
        by_key: dict[tuple[str, str], dict[str, Any]] = {}
        for image in images:
            dangling = NONE_NAME in (image["repository"], image["tag"])
            key = (image["id"], image["repository"])
            entry = None if dangling else by_key.get(key)
            if entry is None:
                entry = {
                    "id": image["id"],
                    "repository": NONE_NAME if dangling else image["repository"],
                    "tags": [],
                    "size": image["size"],
                    "virtual_size": image["size"],
                    "created": image["created"],
                    "upgradable": image["upgradable"],
                    "digest": _image_digest(image),
                    "remote_digest": "" if dangling else _image_digest(image),
                    "description": "",
                }
                entries.append(entry)
                if not dangling:
                    by_key[key] = entry
            if not dangling:
                entry["tags"].append(image["tag"])
                entry["upgradable"] = entry["upgradable"] or image["upgradable"]
        return entries

    def list_images(self, call: ApiCall) -> dict[str, Any]:
        offset = call.params.integer("offset", required=True, minimum=0)
        limit = call.params.integer("limit", required=True, minimum=-1)
        show_dsm = call.params.boolean("show_dsm", False)
        entries = self._image_entries(call.inventory.sorted_images(include_ddsm=show_dsm))
        page = entries[offset:] if limit == -1 else entries[offset:offset + limit]
        return {"images": page, "limit": limit, "offset": offset, "total": len(entries)}

    def get_image(self, call: ApiCall) -> dict[str, Any]:
        # A DSM 7.4 capture sends `identity` (the id from list); other clients send `image` and `tag`.
        image = None
        if call.params.has("identity") or not call.params.has("image"):
            identity = call.params.string("identity", required=True)
            image = next((candidate for candidate in call.inventory.sorted_images() if candidate["id"] == identity), None)
        else:
            image = call.inventory.find_image(call.params.string("image", required=True),
                                              call.params.string("tag", "latest"))
        if image is None:
            raise DsmError(ERR_IMAGE_NOT_FOUND, "no such image")
        return {
            "id": image["id"],
            "cmd": ["/docker-entrypoint.sh"],
            "entrypoint": [],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "ports": [],
            "volumes": [],
            "size": image["size"],
            "virtual_size": image["size"],
            "created": image["created"],
        }

    def pull_start(self, call: ApiCall) -> dict[str, Any]:
        repository = call.params.string("repository", required=True)
        tag = call.params.string("tag", "latest")
        if REPOSITORY_PATTERN.fullmatch(repository) is None:
            raise DsmError(ERR_BAD_PARAMETER, f"invalid repository name {repository!r}")
        if TAG_PATTERN.fullmatch(tag) is None:
            raise DsmError(ERR_BAD_PARAMETER, f"invalid tag {tag!r}")
        task_id = call.inventory.start_pull(repository, tag, None, call.now + call.pull_delay)
        call.inventory.tasks[task_id] = {"kind": "pull", "repository": repository, "tag": tag, "polls": 0}
        return {"task_id": task_id}

    def _task(self, call: ApiCall, kind: str) -> dict[str, Any]:
        task_id = call.params.string("task_id", required=True)
        task = call.inventory.tasks.get(task_id)
        if task is None or task["kind"] != kind:
            raise DsmError(ERR_TASK_NOT_FOUND, f"no {kind} task {task_id!r}")
        task["polls"] += 1
        return task

    def pull_status(self, call: ApiCall) -> dict[str, Any]:
        task = self._task(call, "pull")
        task_id = call.params.string("task_id")
        finished = task["polls"] > call.task_polls and not call.inventory.is_pending(task_id)
        image = call.inventory.find_image(task["repository"], task["tag"]) if finished else None
        total = image["size"] if image is not None else 100 * 1024 * 1024
        downloaded = total if finished else min(total - 1, task["polls"] * total // (call.task_polls + 2))
        return {
            "description": "Downloaded" if finished else "Downloading",
            "downloaded": downloaded,
            "finished": finished,
            "repository": task["repository"],
            "tag": task["tag"],
        }

    def upgrade_start(self, call: ApiCall) -> dict[str, Any]:
        repository = call.params.string("repository", required=True)
        tagged = [image for image in call.inventory.images if image["repository"] == repository and image["tag"] != NONE_NAME]
        if not tagged:
            raise DsmError(ERR_IMAGE_NOT_FOUND, f"no image of repository {repository!r}")
        task_id = call.inventory.new_task_id("upgrade")
        call.inventory.tasks[task_id] = {
            "kind": "upgrade", "repository": repository, "polls": 0, "total": len(tagged), "applied": False,
        }
        return {"task_id": task_id}

    def upgrade_status(self, call: ApiCall) -> dict[str, Any]:
        task = self._task(call, "upgrade")
        finished = task["polls"] > call.task_polls
        if finished and not task["applied"]:
            task["applied"] = True
            for image in list(call.inventory.images):
                if image["repository"] == task["repository"] and image["tag"] != NONE_NAME:
                    call.inventory.rebuild_image(image, f"upgrade/{task['repository']}:{image['tag']}/{call.now}", int(call.now))
        current = task["total"] if finished else min(task["total"] - 1, task["polls"] * task["total"] // (call.task_polls + 1))
        return {
            "current": current,
            "total": task["total"],
            "finished": finished,
            "state": "finished" if finished else "upgrading",
            "image": task["repository"],
        }

    def delete_images(self, call: ApiCall) -> dict[str, Any]:
        items = call.params.array("images")
        results: dict[str, dict[str, dict[str, int]]] = {}
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("repository"), str) \
                    or not isinstance(item.get("tags"), list) or not all(isinstance(tag, str) for tag in item["tags"]):
                raise DsmError(ERR_BAD_PARAMETER, "each item of images must be {repository, tags:[...]}")
        for item in items:
            repository = item["repository"]
            for tag in item["tags"]:
                image = call.inventory.find_image(repository, tag)
                if image is None:
                    code = ERR_IMAGE_NOT_FOUND
                elif call.inventory.containers_using_image(image):
                    code = ERR_IMAGE_IN_USE
                else:
                    call.inventory.delete_image(image)
                    code = 0
                results.setdefault(repository, {})[tag] = {"error": code}
        return {"image_objects": results}

    def prune_images(self, call: ApiCall) -> dict[str, Any]:
        # NOTE: prunes dangling images only, as `docker image prune` does without -a. What a
        # real NAS removes is not documented.
        deleted = []
        reclaimed = 0
        for image in list(call.inventory.images):
            if NONE_NAME in (image["repository"], image["tag"]) and not call.inventory.containers_using_image(image):
                call.inventory.delete_image(image)
                deleted.append({"Deleted": image["id"]})
                reclaimed += image["size"]
        return {"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed}

    # -- SYNO.Docker.Registry ----------------------------------------------

    @staticmethod
    def _active_registry(inventory: Inventory) -> dict[str, Any] | None:
        return next((registry for registry in inventory.registries if registry["is_default"]), None)

    def get_registries(self, call: ApiCall) -> dict[str, Any]:
        offset = call.params.integer("offset", 0, minimum=0)
        limit = call.params.integer("limit", -1, minimum=-1)
        registries = [{
            "name": registry["name"],
            "url": registry["url"],
            "syno": registry["name"] == "Docker Hub",
            "enable_registry_mirror": False,
            "mirror_urls": [],
            "enable_trust_SSC": registry.get("enable_trust_SSC", False),
            "username": registry.get("username") or "",
        } for registry in call.inventory.registries]
        active = self._active_registry(call.inventory)
        page = registries[offset:] if limit == -1 else registries[offset:offset + limit]
        return {"registries": page, "using": active["name"] if active else "", "total": len(registries)}

    def search_registry(self, call: ApiCall) -> dict[str, Any]:
        query = call.params.string("q", required=True)
        offset = call.params.integer("offset", 0, minimum=0)
        limit = call.params.integer("limit", 50, minimum=1)
        page_size = call.params.integer("page_size", 50, minimum=1)
        active = self._active_registry(call.inventory)
        if active is None or not active.get("searchable", False):
            raise DsmError(ERR_REGISTRY_NO_SEARCH, f"registry {active and active['name']!r} offers no search API")
        needle = query.casefold()
        matches = [entry for entry in call.inventory.search_catalog if needle in entry["name"].casefold()]
        page = matches[offset:offset + limit]
        return {
            "data": [{**entry, "downloads": entry["star_count"] * 1000, "registry": active["name"]} for entry in page],
            "total": len(matches),
            "offset": offset,
            "limit": limit,
            "page_size": page_size,
        }

    def registry_tags(self, call: ApiCall) -> list[dict[str, str]]:
        if not call.params.has("repo") and call.params.has("repository"):
            raise DsmError(ERR_REGISTRY_REQUEST_FAILED, "tags takes repo, not repository")
        repository = call.params.string("repo", required=True)
        tags = {image["tag"] for image in call.inventory.images if image["repository"] == repository and image["tag"] != NONE_NAME}
        known = any(entry["name"] == repository for entry in call.inventory.search_catalog)
        if tags or known:
            tags.add("latest")
        return [{"tag": tag} for tag in sorted(tags)]

    @staticmethod
    def _check_registry_url(url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DsmError(ERR_BAD_PARAMETER, f"registry url {url!r} is not an http or https URL")

    def _find_registry(self, call: ApiCall, name: str) -> dict[str, Any]:
        registry = call.inventory.find_registry(name)
        if registry is None:
            raise DsmError(ERR_REGISTRY_NOT_FOUND, f"no registry {name!r}")
        return registry

    def create_registry(self, call: ApiCall) -> None:
        name = call.params.string("name", required=True)
        url = call.params.string("url")
        if url is None:
            raise DsmError(ERR_MISSING_ENVELOPE, "create without url")
        trust = call.params.boolean("enable_trust_SSC", False)
        username = call.params.string("username")
        password = call.params.string("password")
        self._check_registry_url(url)
        if call.inventory.find_registry(name) is not None:
            raise DsmError(ERR_REGISTRY_EXISTS, f"registry {name!r} already exists")
        call.inventory.registries.append({
            "name": name, "url": url, "is_default": False, "username": username, "password": password,
            "searchable": False, "enable_trust_SSC": trust,
        })
        return None

    def set_registry(self, call: ApiCall) -> None:
        registry = self._find_registry(call, call.params.string("oldname", required=True))
        name = call.params.string("name", registry["name"])
        if name != registry["name"] and call.inventory.find_registry(name) is not None:
            raise DsmError(ERR_REGISTRY_EXISTS, f"registry {name!r} already exists")
        url = call.params.string("url", registry["url"])
        self._check_registry_url(url)
        registry.update({
            "name": name,
            "url": url,
            "enable_trust_SSC": call.params.boolean("enable_trust_SSC", registry.get("enable_trust_SSC", False)),
            "username": call.params.string("username", registry.get("username")),
            "password": call.params.string("password", registry.get("password")),
        })
        return None

    def delete_registry(self, call: ApiCall) -> None:
        registry = self._find_registry(call, call.params.string("name", required=True))
        if registry["name"] == "Docker Hub":
            raise DsmError(ERR_REGISTRY_PROTECTED, "Docker Hub cannot be removed")
        was_active = registry["is_default"]
        call.inventory.registries = [candidate for candidate in call.inventory.registries if candidate is not registry]
        if was_active:
            hub = call.inventory.find_registry("Docker Hub")
            if hub is not None:
                hub["is_default"] = True
        return None

    def use_registry(self, call: ApiCall) -> None:
        registry = self._find_registry(call, call.params.string("name", required=True))
        for candidate in call.inventory.registries:
            candidate["is_default"] = candidate is registry
        return None

    # -- SYNO.Docker.Container ---------------------------------------------

    def list_containers(self, call: ApiCall) -> dict[str, Any]:
        offset = call.params.integer("offset", required=True, minimum=0)
        limit = call.params.integer("limit", required=True, minimum=-1)
        kind = call.params.string("type", required=True)
        if kind not in ("all", "running"):
            raise DsmError(ERR_BAD_PARAMETER, f"type {kind!r} is not all or running")
        containers = [
            {
                "id": hashlib.sha256(f"container/{container['name']}".encode()).hexdigest(),
                "name": container["name"],
                "image": container["image"],
                "status": container["status"],
                "state": {"Running": container["status"] == "running"},
            }
            for container in call.inventory.containers
            if kind == "all" or container["status"] == "running"
        ]
        page = containers[offset:] if limit == -1 else containers[offset:offset + limit]
        return {"containers": page, "total": len(containers)}


DIALECTS = {"document": DocumentDialect, "container-manager": ContainerManagerDialect}


# ---------------------------------------------------------------------------
# Simulator core: envelope, discovery, login, sessions, faults, request log


@dataclasses.dataclass
class Session:
    sid: str
    account: str
    synotoken: str | None
    calls: int = 0


@dataclasses.dataclass
class ApiRequest:
    """A decoded /webapi request."""

    http_method: str
    cgi: str  # the path below /webapi/, such as "entry.cgi"
    params: dict[str, str]  # query string and form body merged, the body wins
    headers: dict[str, str]
    cookie_sid: str | None
    json_body: bool = False  # the body was sent as application/json


@dataclasses.dataclass
class Reply:
    status: int
    content_type: str
    body: bytes
    code: int | None = None  # DSM error code, None on success or for non-API replies
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    reason: str = ""  # for the --verbose log only


def json_reply(document: Any, code: int | None = None, reason: str = "") -> Reply:
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Reply(200, "application/json; charset=utf-8", body, code, reason=reason)


def success_reply(data: dict[str, Any] | None) -> Reply:
    document: dict[str, Any] = {"success": True}
    if data is not None:
        document["data"] = data
    return json_reply(document)


def error_reply(code: int, errors: Any = None, reason: str = "") -> Reply:
    error: dict[str, Any] = {"code": code}
    if errors is not None:
        error["errors"] = errors
    return json_reply({"success": False, "error": error}, code, reason)


def html_reply(status: int, page: str) -> Reply:
    return Reply(status, "text/html; charset=utf-8", page.encode("utf-8"))


class ControlError(Exception):
    """An invalid request to a /_sim/ control endpoint, rejected with HTTP 400."""


class Simulator:
    """All mutable state of one simulated NAS, guarded by one lock."""

    INFO_API = "SYNO.API.Info"
    AUTH_API = "SYNO.API.Auth"

    def __init__(self, fixture: Fixture, options: argparse.Namespace, log_file=None):
        self.fixture = fixture
        self.options = options
        self.log_file = log_file
        self.lock = threading.RLock()
        self.dialect = DIALECTS[options.dialect]()

        # DSM 7 reports requestFormat JSON for SYNO.API.Info, DSM 6 reports none. SYNO.API.Info
        # and SYNO.API.Auth are served by this class, so their specs list no handlers.
        info_format = "JSON" if options.auth_path == "entry.cgi" else None
        api_list = [
            ApiSpec(self.INFO_API, "query.cgi", 1, 1, info_format, {}),
            ApiSpec(self.AUTH_API, options.auth_path, 1, options.auth_max_version, None, {}),
        ]
        if not options.no_docker:
            api_list.extend(self.dialect.api_specs())
        self.apis = {spec.name: spec for spec in api_list}
        self.served_paths = {spec.path for spec in api_list} | {"entry.cgi"}
        self.reset()

    def reset(self) -> None:
        """Restore the fixture inventory and the command-line settings, and clear log, sessions, faults and stats."""
        with self.lock:
            self.inventory = Inventory(self.fixture)
            self.sessions: dict[str, Session] = {}
            self.device_tokens: dict[str, set[str]] = {}
            self.records: list[dict[str, Any]] = []
            self.next_seq = 1
            self.faults: list[dict[str, Any]] = []
            self.config = {"pull_delay": self.options.pull_delay, "session_ttl_calls": None,
                           "task_polls": ContainerManagerDialect.DEFAULT_TASK_POLLS}
            self.webapi_connections: set[int] = set()
            self.request_count = 0
            self.login_count = 0
            self.logout_count = 0

    # -- control endpoints -------------------------------------------------

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {
                "connections": len(self.webapi_connections),
                "requests": self.request_count,
                "sessions": len(self.sessions),
                "logins": self.login_count,
                "logouts": self.logout_count,
            }

    def state(self) -> dict[str, Any]:
        with self.lock:
            self.inventory.apply_due_pulls(time.time())
            return self.inventory.snapshot()

    def log_since(self, since: int) -> list[dict[str, Any]]:
        with self.lock:
            return [record for record in self.records if record["seq"] > since]

    def expire_sessions(self) -> int:
        with self.lock:
            count = len(self.sessions)
            self.sessions.clear()
            return count

    def set_config(self, changes: Any) -> dict[str, Any]:
        if not isinstance(changes, dict):
            raise ControlError("the config body must be a JSON object")
        unknown = set(changes) - set(self.config)
        if unknown:
            raise ControlError(f"unknown config keys {sorted(unknown)}. Known keys are {sorted(self.config)}")
        if "pull_delay" in changes:
            delay = changes["pull_delay"]
            if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not math.isfinite(delay) or delay < 0:
                raise ControlError(f"pull_delay must be a non-negative number of seconds, not {delay!r}")
        if "task_polls" in changes:
            polls = changes["task_polls"]
            if isinstance(polls, bool) or not isinstance(polls, int) or polls < 0:
                raise ControlError(f"task_polls must be a non-negative integer, not {polls!r}")
        if "session_ttl_calls" in changes:
            ttl = changes["session_ttl_calls"]
            if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1):
                raise ControlError(f"session_ttl_calls must be a positive integer or null, not {ttl!r}")
        with self.lock:
            self.config.update(changes)
            if "session_ttl_calls" in changes:
                # Count the N calls from now on, not from each login.
                for session in self.sessions.values():
                    session.calls = 0
            return dict(self.config)

    def set_faults(self, faults: Any) -> list[dict[str, Any]]:
        if not isinstance(faults, list):
            raise ControlError("the faults body must be a JSON array")
        validated = [self._validate_fault(fault, index) for index, fault in enumerate(faults)]
        with self.lock:
            self.faults = validated
            return copy.deepcopy(self.faults)

    def list_faults(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.faults)

    @staticmethod
    def _validate_fault(fault: Any, index: int) -> dict[str, Any]:
        where = f"faults[{index}]"
        if not isinstance(fault, dict):
            raise ControlError(f"{where} must be a JSON object")
        kind = fault.get("kind")
        if kind not in FAULT_KINDS:
            raise ControlError(f"{where}: kind {kind!r} is invalid. Use one of {', '.join(FAULT_KINDS)}")
        result = dict(fault)
        count = result.setdefault("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < -1:
            raise ControlError(f"{where}: count must be a positive integer, 0 or -1 (forever), not {count!r}")
        for field in ("api", "method"):
            if result.get(field) is not None and not isinstance(result[field], str):
                raise ControlError(f"{where}: {field} must be a string")
        if kind == "delay":
            seconds = result.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
                raise ControlError(f"{where}: a delay fault needs seconds, a non-negative number")
        if kind == "http_status":
            status = result.get("status")
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise ControlError(f"{where}: an http_status fault needs status, an integer from 100 to 599")
        if kind == "dsm_error":
            code = result.get("code")
            if isinstance(code, bool) or not isinstance(code, int):
                raise ControlError(f"{where}: a dsm_error fault needs code, an integer")
        if kind == "drop" and not isinstance(result.get("apply", False), bool):
            raise ControlError(f"{where}: apply must be true or false")
        if kind == "body":
            if not isinstance(result.get("body"), str):
                raise ControlError(f"{where}: a body fault needs body, a string")
            status = result.setdefault("status", 200)
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise ControlError(f"{where}: status must be an integer from 100 to 599")
            if not isinstance(result.setdefault("content_type", "application/json"), str):
                raise ControlError(f"{where}: content_type must be a string")
        return result

    # -- request handling --------------------------------------------------

    def take_fault(self, api: str | None, method: str | None) -> dict[str, Any] | None:
        """Return a copy of the first matching fault that has a count left, and use up one count."""
        with self.lock:
            for fault in self.faults:
                if fault["count"] == 0:
                    continue
                if fault.get("api") is not None and fault["api"] != api:
                    continue
                if fault.get("method") is not None and fault["method"] != method:
                    continue
                if fault["count"] > 0:
                    fault["count"] -= 1
                return dict(fault)
            return None

    def record(self, record: dict[str, Any], connection_id: int, reason: str) -> None:
        """Number a finished request record and store it in memory and in the --log file."""
        with self.lock:
            record["seq"] = self.next_seq
            self.next_seq += 1
            # NOTE: the in-memory log has no size limit. POST /_sim/reset clears it.
            self.records.append(record)
            self.request_count += 1
            self.webapi_connections.add(connection_id)
            if self.log_file is not None:
                self.log_file.write(json.dumps(record, ensure_ascii=False) + "\n")
                self.log_file.flush()
        if LOG.isEnabledFor(logging.INFO):
            # The query string and body are left out because they carry passwords and session ids.
            LOG.info(
                "conn=%d seq=%d %s %s api=%s method=%s version=%s -> status=%s code=%s fault=%s%s",
                connection_id, record["seq"], record["http_method"], record["path"], record["api"],
                record["method"], record["version"], record["status"], record["code"], record["fault"],
                f" ({reason})" if reason else "",
            )

    def call(self, request: ApiRequest) -> Reply:
        """Run one /webapi request through the DSM envelope checks and its handler."""
        with self.lock:
            now = time.time()
            self.inventory.apply_due_pulls(now)
            try:
                return self._call_locked(request, now)
            except DsmError as error:
                return error_reply(error.code, error.errors, error.reason)

    def _call_locked(self, request: ApiRequest, now: float) -> Reply:
        params = request.params
        api_name = params.get("api", "")
        method_name = params.get("method", "")
        version_text = params.get("version", "")
        if api_name == "" or method_name == "" or version_text == "":
            raise DsmError(ERR_MISSING_ENVELOPE, "missing api, method or version")
        if request.json_body and self.dialect.rejects_json_body:
            raise DsmError(ERR_MISSING_ENVELOPE, "a JSON request body is not accepted")

        spec = self.apis.get(api_name)
        served_here = spec is not None and (
            spec.path == request.cgi or (spec.name == self.INFO_API and request.cgi == "entry.cgi"))
        if not served_here:
            raise DsmError(ERR_NO_SUCH_API, f"API {api_name} is not served on {request.cgi}")

        if re.fullmatch(r"[0-9]+", version_text) is None:
            raise DsmError(ERR_VERSION_NOT_SUPPORTED, f"version {version_text!r} is not an integer")
        version = int(version_text)
        if not spec.min_version <= version <= spec.max_version:
            raise DsmError(ERR_VERSION_NOT_SUPPORTED,
                           f"{api_name} supports versions {spec.min_version} to {spec.max_version}, not {version}")

        if spec.name == self.INFO_API and method_name == "query":
            return success_reply(self._query_info(FormParams(params)))
        if spec.name == self.AUTH_API and method_name == "login":
            return self._login(request, version)
        if spec.name == self.AUTH_API and method_name == "logout":
            return self._logout(request)
        handler = spec.methods.get(method_name)
        if handler is None:
            raise DsmError(ERR_NO_SUCH_METHOD, f"{api_name} has no method {method_name}")

        self._check_session(request, write=method_name in spec.write_methods)
        call = ApiCall(self.dialect.read_params(params), self.inventory, request.http_method, now,
                       float(self.config["pull_delay"]), int(self.config["task_polls"]))
        return success_reply(handler(call))

    def _query_info(self, params: FormParams) -> dict[str, Any]:
        query = params.string("query", required=True)
        if query == "all":
            names = list(self.apis)
        else:
            names = [name.strip() for name in query.split(",")]
        return {name: self.apis[name].info_entry() for name in names if name in self.apis}

    def _find_session(self, request: ApiRequest) -> Session | None:
        sid = request.params.get("_sid") or request.cookie_sid
        if not sid:
            return None
        return self.sessions.get(sid)

    def _check_session(self, request: ApiRequest, *, write: bool = False) -> Session:
        session = self._find_session(request)
        if session is None:
            raise DsmError(ERR_INVALID_SESSION, "missing or unknown session id")
        ttl = self.config["session_ttl_calls"]
        if ttl is not None and session.calls >= ttl:
            del self.sessions[session.sid]
            raise DsmError(ERR_INVALID_SESSION, f"session expired after {ttl} calls")
        session.calls += 1
        # DSM 7.2 also accepts the token as the SynoToken parameter.
        sent = request.headers.get("X-SYNO-TOKEN") or request.params.get("SynoToken")
        if session.synotoken is not None and request.http_method == "POST" and sent != session.synotoken:
            raise DsmError(ERR_INVALID_SESSION, "POST without the session's X-SYNO-TOKEN")
        if write and (session.synotoken is None or sent != session.synotoken):
            # Write methods that the dialect marks need the token even by GET, and even when the
            # login asked for none, as on DSM 7.2 and later.
            raise DsmError(ERR_INVALID_SESSION, "write call without the session's X-SYNO-TOKEN")
        return session

    def _login(self, request: ApiRequest, version: int) -> Reply:
        params = request.params
        if "account" not in params or "passwd" not in params:
            raise DsmError(ERR_BAD_PARAMETER, "login without account or passwd")
        user = self.fixture.users.get(params["account"])
        if user is None or user.password != params["passwd"]:
            raise DsmError(ERR_LOGIN_FAILED, f"wrong account or password for {params['account']!r}")
        if user.disabled:
            raise DsmError(ERR_ACCOUNT_DISABLED, f"account {user.account!r} is disabled")

        otp_verified = False
        if user.otp is not None:
            # DSM 7 clients send the device token as device_id, DSM 6 clients as did.
            device_id = params.get("device_id") or params.get("did") or ""
            trusted_device = device_id != "" and device_id in self.device_tokens.get(user.account, set())
            otp_code = params.get("otp_code", "")
            if not trusted_device and otp_code == "":
                errors = {"token": secrets.token_urlsafe(24), "types": [{"type": "otp"}]}
                raise DsmError(ERR_OTP_REQUIRED, f"account {user.account!r} needs an OTP code", errors)
            if not trusted_device and otp_code != user.otp:
                raise DsmError(ERR_OTP_REJECTED, f"wrong OTP code for {user.account!r}")
            otp_verified = not trusted_device

        sid = secrets.token_urlsafe(36)
        synotoken = secrets.token_urlsafe(9) if params.get("enable_syno_token") == "yes" else None
        self.sessions[sid] = Session(sid, user.account, synotoken)
        self.login_count += 1

        data: dict[str, Any] = {"account": user.account, "sid": sid} if version >= 7 else {"sid": sid}
        if synotoken is not None:
            data["synotoken"] = synotoken
        if params.get("enable_device_token") == "yes" and otp_verified:
            device_token = secrets.token_urlsafe(24)
            self.device_tokens.setdefault(user.account, set()).add(device_token)
            data["device_id" if version >= 7 else "did"] = device_token
        reply = success_reply(data)
        if params.get("format", "cookie") != "sid":
            reply.headers.append(("Set-Cookie", f"id={sid}; path=/; HttpOnly"))
        return reply

    def _logout(self, request: ApiRequest) -> Reply:
        session = self._find_session(request)
        if session is not None:
            del self.sessions[session.sid]
            self.logout_count += 1
        return success_reply(None)


# ---------------------------------------------------------------------------
# HTTP layer


def decode_form(text: str) -> dict[str, str]:
    """Decode application/x-www-form-urlencoded text as DSM does: `+` is a space, the last duplicate wins."""
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace"))


def parse_cookie_sid(header: str | None) -> str | None:
    if not header:
        return None
    for part in header.split(";"):
        name, separator, value = part.strip().partition("=")
        if separator and name == "id" and value:
            return value
    return None


class BadRequest(Exception):
    pass


class DsmRequestHandler(http.server.BaseHTTPRequestHandler):
    """One instance per TCP connection; handles its keep-alive requests in turn."""

    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300  # seconds an idle keep-alive connection stays open
    server: "SimulatorServer"

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        self.connection_id = next(self.server.connection_ids)
        context = self.server.ssl_context
        if context is not None:
            # The TLS handshake runs here, in the connection's own thread, so a slow
            # or failing client cannot stall the accept loop.
            self.request.settimeout(self.timeout)
            self.request = context.wrap_socket(self.request, server_side=True)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self.server.ssl_context is not None:
                # socketserver closes the plain socket it accepted, which wrap_socket detached.
                self.request.close()

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass  # Simulator.record logs each /webapi request instead.

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("conn=%d %s", self.connection_id, format % args)

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    # -- request reading ---------------------------------------------------

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self.read_chunked_body()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        if re.fullmatch(r"[0-9]+", length_text.strip()) is None:
            raise BadRequest(f"invalid Content-Length {length_text!r}")
        return self.rfile.read(int(length_text))

    def read_chunked_body(self) -> bytes:
        chunks = []
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise BadRequest(f"invalid chunk size {size_line!r}") from None
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailer fields
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    # -- response writing --------------------------------------------------

    def send_reply(self, reply: Reply, *, declared_length: int | None = None, body: bytes | None = None) -> None:
        payload = reply.body if body is None else body
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload) if declared_length is None else declared_length))
        for name, value in reply.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def send_json(self, status: int, document: Any) -> None:
        reply = json_reply(document)
        reply.status = status
        self.send_reply(reply)

    def close_now(self) -> None:
        """Close the connection without sending anything more."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- dispatch ----------------------------------------------------------

    def dispatch(self, http_method: str) -> None:
        try:
            body = self.read_body()
        except BadRequest as error:
            LOG.warning("conn=%d rejected a request: %s", self.connection_id, error)
            self.close_connection = True
            self.send_reply(html_reply(400, render_error_page(400)))
            return

        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/webapi/"):
            self.handle_webapi(http_method, url, body)
        elif url.path.startswith("/_sim/"):
            self.handle_control(http_method, url, body)
        else:
            self.send_reply(html_reply(404, render_error_page(404)))

    def handle_webapi(self, http_method: str, url: urllib.parse.SplitResult, body: bytes) -> None:
        simulator = self.server.simulator
        started = time.time()

        # http.server decodes the request line as Latin-1. Undoing that lets raw UTF-8 bytes read as UTF-8.
        raw_query = url.query.encode("latin-1", "replace").decode("utf-8", "replace")
        raw_body = body.decode("utf-8", "backslashreplace")
        content_type = self.headers.get("Content-Type", "")
        query = decode_form(raw_query)
        is_form = content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"
        body_params = decode_form(body.decode("utf-8", "replace")) if is_form else {}
        params = {**query, **body_params}
        headers = {name: self.headers[name] for name in RECORDED_HEADERS if self.headers[name] is not None}

        version_text = params.get("version")
        version: int | str | None = version_text
        if version_text is not None and re.fullmatch(r"[0-9]+", version_text):
            version = int(version_text)
        record: dict[str, Any] = {
            "seq": None,
            "conn": self.connection_id,
            "time": started,
            "http_method": http_method,
            "path": url.path,
            "raw_query": raw_query,
            "raw_body": raw_body,
            "query": query,
            "body": body_params,
            "api": params.get("api"),
            "method": params.get("method"),
            "version": version,
            "headers": headers,
            "status": None,
            "code": None,
            "fault": None,
        }

        cgi = url.path[len("/webapi/"):]
        if cgi not in simulator.served_paths:
            self.send_reply(html_reply(404, render_error_page(404)))
            record["status"] = 404
            simulator.record(record, self.connection_id, f"no CGI {cgi}")
            return

        is_json = content_type.split(";", 1)[0].strip().lower() == "application/json" and body.strip() != b""
        request = ApiRequest(http_method, cgi, params, headers, parse_cookie_sid(self.headers.get("Cookie")), is_json)
        fault = simulator.take_fault(params.get("api"), params.get("method"))
        kind = fault["kind"] if fault else None
        record["fault"] = kind

        if kind == "delay":
            time.sleep(fault["seconds"])

        reply: Reply | None
        if kind == "html":
            reply = html_reply(200, PORTAL_PAGE)
        elif kind == "http_status":
            reply = html_reply(fault["status"], render_error_page(fault["status"]))
        elif kind == "dsm_error":
            reply = error_reply(fault["code"], reason="injected dsm_error fault")
        elif kind == "body":
            reply = Reply(fault["status"], fault["content_type"], fault["body"].encode("utf-8"),
                          reason="injected body fault")
        elif kind == "drop" and not fault.get("apply", False):
            reply = None
        else:
            reply = self.run_call(request)

        if reply is not None:
            record["code"] = reply.code
            if kind != "drop":
                record["status"] = reply.status
        # Recorded before responding, so a client that reads the log right after
        # its call always finds the call there.
        simulator.record(record, self.connection_id, reply.reason if reply is not None else "")
        if kind == "drop":
            self.close_now()
        elif kind == "truncate":
            half = reply.body[:len(reply.body) // 2]
            self.send_reply(reply, body=half)
        elif kind == "cut":
            self.close_connection = True
            self.send_reply(reply, declared_length=len(reply.body), body=reply.body[:len(reply.body) // 2])
            self.close_now()
        else:
            self.send_reply(reply)

    def run_call(self, request: ApiRequest) -> Reply:
        try:
            return self.server.simulator.call(request)
        except Exception:
            LOG.exception("conn=%d: simulator bug while handling %s", self.connection_id, request.params.get("api"))
            return error_reply(ERR_UNKNOWN, reason="simulator bug, see the traceback above")

    def handle_control(self, http_method: str, url: urllib.parse.SplitResult, body: bytes) -> None:
        simulator = self.server.simulator
        name = url.path[len("/_sim/"):]
        routes: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "log"): lambda: simulator.log_since(self.since_parameter(url)),
            ("GET", "stats"): simulator.stats,
            ("GET", "state"): simulator.state,
            ("GET", "faults"): simulator.list_faults,
            ("GET", "config"): lambda: dict(simulator.config),
            ("POST", "reset"): lambda: self.reset_simulator(),
            ("POST", "expire"): lambda: {"ok": True, "expired": simulator.expire_sessions()},
            ("POST", "config"): lambda: simulator.set_config(self.json_body(body)),
            ("POST", "faults"): lambda: simulator.set_faults(self.json_body(body)),
        }
        route = routes.get((http_method, name))
        if route is None:
            if any(path == name for _, path in routes):
                self.send_json(405, {"error": f"{http_method} is not allowed on /_sim/{name}"})
            else:
                self.send_json(404, {"error": f"no control endpoint /_sim/{name}"})
            return
        try:
            self.send_json(200, route())
        except ControlError as error:
            self.send_json(400, {"error": str(error)})

    def reset_simulator(self) -> dict[str, bool]:
        self.server.simulator.reset()
        return {"ok": True}

    @staticmethod
    def since_parameter(url: urllib.parse.SplitResult) -> int:
        value = urllib.parse.parse_qs(url.query).get("since", ["0"])[-1]
        if re.fullmatch(r"[0-9]+", value) is None:
            raise ControlError(f"since={value!r} must be a non-negative integer (a seq number)")
        return int(value)

    @staticmethod
    def json_body(body: bytes) -> Any:
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ControlError(f"the request body is not valid JSON: {error}") from error


class SimulatorServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: Simulator, ssl_context: ssl.SSLContext | None):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.simulator = simulator
        self.ssl_context = ssl_context
        self.connection_ids = itertools.count(1)
        super().__init__(address, DsmRequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name with getfqdn, which can wait on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, ssl.SSLError, TimeoutError)):
            LOG.debug("connection from %s ended: %r", client_address, error)
        else:
            LOG.exception("error while serving a connection from %s", client_address)


# ---------------------------------------------------------------------------
# Command line


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Simulate a Synology DSM web API with the Docker image APIs, for tests. "
                    "Prints the base URL as the first line of stdout and runs until SIGTERM or SIGINT.")
    parser.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE, metavar="PATH",
                        help="JSON inventory to serve (default: tests/fixtures/homelab.json of this repository)")
    parser.add_argument("--host", default="127.0.0.1", metavar="ADDRESS", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, metavar="PORT", help="TCP port, or 0 for a free one (default: 5000)")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with --cert and --key")
    parser.add_argument("--cert", type=Path, metavar="FILE", help="PEM certificate chain for --tls")
    parser.add_argument("--key", type=Path, metavar="FILE", help="PEM private key for --tls")
    parser.add_argument("--log", type=Path, metavar="FILE", help="also append each request record to this file as one JSON line")
    parser.add_argument("--pull-delay", type=float, default=0.3, metavar="SECONDS",
                        help="seconds after a pull until the image appears (default: 0.3)")
    parser.add_argument("--auth-path", choices=("auth.cgi", "entry.cgi"), default="entry.cgi",
                        help="CGI that serves SYNO.API.Auth: auth.cgi as on DSM 6, entry.cgi as on DSM 7 (default)")
    parser.add_argument("--auth-max-version", type=int, default=7, metavar="N",
                        help="highest SYNO.API.Auth version: 6 on DSM 6, 7 on DSM 7 (default: 7)")
    parser.add_argument("--no-docker", action="store_true",
                        help="list no SYNO.Docker.* API, as on a NAS without Container Manager")
    parser.add_argument("--dialect", choices=sorted(DIALECTS), default="document",
                        help="image API dialect: document (the user's API document, default) or "
                             "container-manager (DSM 6 Docker and DSM 7 Container Manager)")
    parser.add_argument("--verbose", action="store_true",
                        help="log one line per request to stderr, without parameters or secrets")

    options = parser.parse_args(argv)
    if options.tls and (options.cert is None or options.key is None):
        parser.error("--tls needs --cert FILE and --key FILE")
    if not options.tls and (options.cert is not None or options.key is not None):
        parser.error("--cert and --key only apply with --tls")
    if not 0 <= options.port <= 65535:
        parser.error(f"--port {options.port} is outside 0..65535")
    if options.pull_delay < 0 or not math.isfinite(options.pull_delay):
        parser.error("--pull-delay must be a non-negative number of seconds")
    if options.auth_max_version < 1:
        parser.error("--auth-max-version must be at least 1")
    return options


def format_base_url(scheme: str, host: str, port: int) -> str:
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def main(argv: list[str] | None = None) -> int:
    options = parse_arguments(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO if options.verbose else logging.WARNING,
                        format="dsm_sim: %(levelname)s %(message)s")

    try:
        fixture = load_fixture(options.fixture, time.time())
    except FixtureError as error:
        LOG.error("%s", error)
        return 2

    ssl_context = None
    if options.tls:
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ssl_context.load_cert_chain(options.cert, options.key)
        except (OSError, ssl.SSLError) as error:
            LOG.error("cannot load --cert %s / --key %s: %s", options.cert, options.key, error)
            return 2

    log_file = None
    if options.log is not None:
        try:
            log_file = open(options.log, "a", encoding="utf-8")
        except OSError as error:
            LOG.error("cannot open --log %s: %s", options.log, error)
            return 2

    simulator = Simulator(fixture, options, log_file)
    try:
        server = SimulatorServer((options.host, options.port), simulator, ssl_context)
    except OSError as error:
        LOG.error("cannot listen on %s port %d: %s", options.host, options.port, error)
        return 2

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())

    port = server.server_address[1]
    print(format_base_url("https" if options.tls else "http", options.host, port), flush=True)
    LOG.info("serving %s on %s port %d with %d images (dialect %s)",
             options.fixture, options.host, port, len(fixture.images), options.dialect)

    serve_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    serve_thread.start()
    while not stop.wait(1.0):
        pass
    LOG.info("stopping")
    server.shutdown()
    server.server_close()
    if log_file is not None:
        log_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
