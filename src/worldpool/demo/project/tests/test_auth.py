from auth.login import UserStore, hash_password


def test_hash_depends_on_salt() -> None:
    assert hash_password("pw", "a") != hash_password("pw", "b")


def test_unknown_user_is_refused() -> None:
    assert UserStore().login("nobody@example.com", "pw") is None
