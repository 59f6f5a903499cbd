// Starts `humanllm lsp` (the command and its arguments come from the settings) for .hpat files.
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const settings = vscode.workspace.getConfiguration("humanllm.server");
  const command = settings.get("path", "humanllm");
  const args = settings.get("args", ["lsp"]);
  const server = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient("humanllm", "humanllm .hpat", { run: server, debug: server }, {
    documentSelector: [{ scheme: "file", language: "hpat" }, { scheme: "untitled", language: "hpat" }],
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.hpat") },
  });
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration((event) => {
    if (event.affectsConfiguration("humanllm.server")) {
      vscode.window.showInformationMessage("humanllm: reload the window to restart the language server.");
    }
  }));
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
