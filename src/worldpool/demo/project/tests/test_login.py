from auth.login import UserStore


def make_store() -> UserStore:
    store = UserStore()
    store.sign_up("alice@example.com", "correct horse")
    return store


def test_login_with_the_sign_up_address() -> None:
    assert make_store().login("alice@example.com", "correct horse") is not None


def test_wrong_password_is_refused() -> None:
    assert make_store().login("alice@example.com", "battery staple") is None


def test_login_ignores_case_and_spaces_in_the_address() -> None:
    # Users type their address as they like; sign-up stored it normalised.
    assert make_store().login(" Alice@Example.com", "correct horse") is not None
