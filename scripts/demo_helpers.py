"""The small helpers of scripts/demo.sh, as `python3 scripts/demo_helpers.py SUBCOMMAND`:

  free-port    prints a free TCP port on 127.0.0.1 (for FUNCTIONS_CUSTOMHANDLER_PORT)
  show-res     reads a custom handler's answer to an HttpRotate invocation on stdin; prints the
               HTTP output binding's status code and its JSON body, indented
  timer-logs   reads the answer to a TimerRotate invocation on stdin; prints its Logs, one per
               line, indented, without the last (the run's closing summary, shown already)

Called only by scripts/demo.sh, with the system python3 before any venv exists: standard
library only. Unit-tested in scripts/infra_checks/tests/test_demo_helpers.py.
The answer's shape (Outputs, Logs, ReturnValue):
https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers#response-payload
"""

import json
import socket
import sys


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def show_res(answer, binding="res"):
    """The lines for an HttpRotate answer: `statusCode N`, then the body's JSON indented."""
    res = answer["Outputs"][binding]
    return "statusCode %s\n%s" % (res["statusCode"], json.dumps(json.loads(res["body"]), indent=2))


def timer_logs(answer):
    """The lines for a TimerRotate answer: every log line but the last, indented by two."""
    return "".join("  {}\n".format(line) for line in answer["Logs"][:-1])


def main(argv, stdin=sys.stdin, stdout=sys.stdout):
    command = argv[0] if len(argv) == 1 else None
    if command == "free-port":
        print(free_port(), file=stdout)
    elif command == "show-res":
        print(show_res(json.load(stdin)), file=stdout)
    elif command == "timer-logs":
        stdout.write(timer_logs(json.load(stdin)))
    else:
        print("usage: scripts/demo_helpers.py free-port | show-res | timer-logs", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
