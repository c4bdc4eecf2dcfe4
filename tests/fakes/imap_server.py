"""A real IMAP server on loopback: the Debian dovecot binary started as its own process with a generated
configuration in a temporary directory (listening on 127.0.0.1 on a free port, passwd-file logins, a
maildir in the directory), stopped and removed afterwards. Mail is put in the mailbox by writing the
maildir, as a delivery agent does."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
USER, PASSWORD = "shop", "imap-s3cret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DovecotServer:
    """``with DovecotServer() as imap: imap.url`` is ``imap://shop:…@127.0.0.1:<port>/INBOX``."""

    def __init__(self) -> None:
        if DOVECOT is None:
            raise RuntimeError("dovecot is not installed (Debian package dovecot-imapd)")
        # its own directory, readable by dovecot's unprivileged processes (a test's tmp_path may not be)
        self.directory = Path(tempfile.mkdtemp(prefix="caredesk-dovecot-"))
        os.chmod(self.directory, 0o755)
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.maildir = self.directory / "home" / USER / "Maildir"
        self._deliveries = 0

    @property
    def url(self) -> str:
        return f"imap://{USER}:{PASSWORD}@127.0.0.1:{self.port}/INBOX"

    def _config(self) -> str:
        d = self.directory
        if os.geteuid() == 0:  # dovecot runs no process as root but its master: use the package's users
            internal, login, mail = "dovecot", "dovenull", pwd.getpwnam("dovecot")
        else:
            me = pwd.getpwuid(os.geteuid())
            internal = login = me.pw_name
            mail = me
        self._mail_user = mail
        return f"""
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name}
default_login_user = {login}
first_valid_uid = {min(mail.pw_uid, 100)}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={d}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service pop3-login {{
  chroot =
}}
"""

    def start(self) -> None:
        d = self.directory
        for sub in ("run", "state", f"home/{USER}/Maildir/new", f"home/{USER}/Maildir/cur",
                    f"home/{USER}/Maildir/tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        config = self._config()
        (d / "dovecot.conf").write_text(config)
        (d / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        uid, gid = self._mail_user.pw_uid, self._mail_user.pw_gid
        if os.geteuid() == 0:
            for path in [d / "home", *(d / "home").rglob("*")]:
                os.chown(path, uid, gid)
            os.chmod(d, 0o755)
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(d / "dovecot.conf")],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.process.stdout.read().decode(errors='replace')}"
                                   f"{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    if conn.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"dovecot did not answer on port {self.port}: {self.log()}")

    def log(self) -> str:
        path = self.directory / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def deliver(self, raw: bytes) -> None:
        """Put a message in the inbox (a new file in the maildir's ``new``, as a delivery agent does)."""
        self._deliveries += 1
        name = f"{int(time.time())}.caredesk{self._deliveries}_{os.getpid()}.test"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(raw)
        if os.geteuid() == 0:
            os.chown(tmp, self._mail_user.pw_uid, self._mail_user.pw_gid)
        tmp.rename(self.maildir / "new" / name)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
