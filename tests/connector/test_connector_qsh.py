"""The canonical request and qsh match Atlassian's published vectors."""

from __future__ import annotations

import pytest

from connector.qsh import canonical_request, qsh


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/and/more/", "foo=bah", "GET&/and/more&foo=bah"),
        ("GET", "/and/more", "foo=humbug&foo=bah", "GET&/and/more&foo=bah,humbug"),
        ("GET", "/x", "foo=bah+bah", "GET&/x&foo=bah%20bah"),
        ("GET", "/some/path&a=b", "x=y", "GET&/some/path%26a=b&x=y"),
        ("GET", "/x", "a=*~!'()", "GET&/x&a=%2A~%21%27%28%29"),
        ("post", "/x", "b=2&a=1&jwt=abc", "POST&/x&a=1&b=2"),
        ("GET", "", "", "GET&/&"),
    ],
)
def test_canonical_request_matches_vectors(method, path, query, expected):
    assert canonical_request(method, path, query) == expected


def test_qsh_of_myself_matches_the_published_hash():
    assert (
        qsh("GET", "/rest/api/3/myself") == "c790e863cecddbf1369d5e058d5f71d9d19741a497a6e4681351909109759513"
    )


def test_base_path_of_the_app_is_stripped():
    assert canonical_request("GET", "/app/panel", "", base_path="/app") == "GET&/panel&"
