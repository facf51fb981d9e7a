"""The code of a code_interpreter call, decoded from its arguments as they stream."""

import itertools
import json

from worker.code_tool import partial_code


def test_every_prefix_decodes_to_a_prefix_of_the_code() -> None:
    src = 'print("a\\tb")\ns = "Zoë 😀 \\u00e9"\n# done'
    arguments = json.dumps({"code": src})
    decoded = [partial_code(arguments[:i]) for i in range(len(arguments) + 1)]
    assert all(src.startswith(d) for d in decoded)
    assert decoded[-1] == src
    assert all(len(a) <= len(b) for a, b in itertools.pairwise(decoded))


def test_bare_code_and_missing_key() -> None:
    assert partial_code("import os\nos.getcwd()") == "import os\nos.getcwd()"
    assert partial_code('{"other": "x", "co') == ""
    assert partial_code('{"code" : "x = 1') == "x = 1"
