"""Users sign up with an e-mail address and log in with it."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


def hash_password(password: str, salt: str) -> str:
    return hashlib.sha256((salt + password).encode()).hexdigest()


@dataclass
class User:
    email: str
    salt: str
    password_hash: str


class UserStore:
    def __init__(self) -> None:
        self._users: dict[str, User] = {}

    def sign_up(self, email: str, password: str) -> User:
        key = email.strip().lower()
        user = User(email=key, salt=key[::-1], password_hash=hash_password(password, key[::-1]))
        self._users[key] = user
        return user

    def login(self, email: str, password: str) -> User | None:
        """The user if the e-mail and password match, else None."""
        user = self._users.get(email)
        if user is None:
            return None
        if not hmac.compare_digest(user.password_hash, hash_password(password, user.salt)):
            return None
        return user
