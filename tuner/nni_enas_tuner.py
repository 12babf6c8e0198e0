"""Hands NNI's tuner process over to the Node.js ENAS tuner.

NNI's manager always starts a tuner as ``python -m nni --exp_params <b64>``, which imports
``tuner.className`` from ``tuner.codeDirectory``. Importing this module replaces that Python
process with ``node <repo>/dist/tuner/main.js --exp_params <b64>`` (os.execvpe: same PID, same
environment, so NNI's tracking and the NNI_* variables carry over); tuner/main.ts then speaks
NNI's WebSocket protocol itself. config.yml::

    tuner:
      codeDirectory: <repo>/tuner
      className: nni_enas_tuner.EnasTuner

The exec happens at import, before NNI looks the class up, so no class is defined here.
Node is $NNI_ENAS_NODE if set, else ``node`` on PATH. This module must not import nni.
"""

import os
import shutil
import sys

_ENTRY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'dist', 'tuner', 'main.js')


def _fail(message):
    sys.stderr.write('nni-enas tuner: ' + message + '\n')
    sys.stderr.flush()
    sys.exit(1)


def _hand_over():
    node = os.environ.get('NNI_ENAS_NODE') or shutil.which('node')
    if not node:
        _fail('node not found: install Node.js >= 20 on PATH or set NNI_ENAS_NODE to its path')
    if not os.path.isfile(_ENTRY):
        _fail(_ENTRY + ' is missing: run `npm ci && npm run build` in ' + os.path.dirname(os.path.dirname(_ENTRY)))
    # Anything Python buffered would be lost with its process image.
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(node, [node, _ENTRY] + sys.argv[1:], os.environ)
    except OSError as error:
        _fail('cannot run node (' + node + '): ' + str(error))


_hand_over()
