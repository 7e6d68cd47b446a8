"""The user data's program: fetches the host's configuration document and hands it to the converge
program, every minute (secure-qdrant-converge.timer) and at first boot: loader.py SOURCE_ENV.

Small on purpose: the user data holds it, and a change to the user data replaces the instance.
Everything that can change in place (the converge program too) rides in the document. The converge
program already installed judges each new document, so a broken one is refused by the last good
one; only a first boot, with none installed, takes it from the fetched document.
"""

import json
import os
import shlex
import subprocess
import sys


def install_converge(text: str, path: str) -> None:
    """The converge program from the document, written whole or not at all."""
    files = {entry["path"]: entry for entry in json.loads(text)["files"]}
    staged = f"{path}.new"
    with open(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755), "w") as out:
        out.write(files[path]["content"])
    os.replace(staged, path)


def main(source_env: str) -> int:
    with open(source_env, encoding="utf-8") as file:
        source = dict(shlex.split(line)[0].split("=", 1) for line in file if "=" in line)
    try:
        import boto3
    except ImportError:
        # An image without it; a failed install is retried by the next run.
        apt = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=600"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([*apt, "update"], env=env, check=True)
        subprocess.run([*apt, "install", "-y", "python3-boto3"], env=env, check=True)
        import boto3
    env, text = dict(os.environ), ""
    bucket, key = source["CONFIG_BUCKET"], source["CONFIG_KEY"]
    try:
        s3 = boto3.client("s3", region_name=source["AWS_REGION"])
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    # Unreachable, not there yet, no credentials yet, throttled: botocore's errors share no base.
    except Exception as error:
        env["FETCH_ERROR"] = f"s3://{bucket}/{key}: {error}"
    if not os.path.exists(source["CONVERGE"]):
        if "FETCH_ERROR" in env:
            print(f"secure-qdrant-loader: {env['FETCH_ERROR']}", file=sys.stderr)
            return 1
        install_converge(text, source["CONVERGE"])
    command = [sys.executable, source["CONVERGE"], source_env]
    return subprocess.run(command, input=text, text=True, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
