// Calls the usermgmt gRPC API from Node.js with @grpc/grpc-js and @grpc/proto-loader, loading the
// service's own .proto files: registers an account, shows the rich error of a second registration
// with the same username, authenticates, and reads the caller ("me").
//
// Usage: node usermgmt-example.mjs --address HOST:PORT [--username NAME] [--password PW]
//                                  [--proto-dir DIR] [--tls]
// Prints one JSON document on stdout; exits 1 with a one-line message on stderr on failure.

import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const DEADLINE_MS = 10_000;

const { values: options } = parseArgs({
  options: {
    address: { type: "string", default: process.env.USERMGMT_ADDRESS ?? "127.0.0.1:50051" },
    username: { type: "string", default: `node-${randomUUID().slice(0, 8)}` },
    password: { type: "string", default: process.env.USERMGMT_PASSWORD ?? "" },
    "proto-dir": { type: "string", default: path.resolve(here, "../../../proto") },
    tls: { type: "boolean", default: false },
  },
});

// google/rpc/*.proto (Status, ErrorInfo, BadRequest) come from google-proto-files.
const googleProtos = path.resolve(require.resolve("google-proto-files/google/rpc/status.proto"), "../../..");

function loadServices(protoDir) {
  const definition = protoLoader.loadSync(
    ["usermgmt/v1/user_service.proto", "usermgmt/v1/auth_service.proto"],
    { includeDirs: [protoDir], keepCase: true, longs: String, enums: String, defaults: true },
  );
  return grpc.loadPackageDefinition(definition).usermgmt.v1;
}

function loadErrorTypes() {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(googleProtos, target);
  root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
  return root;
}

const errorTypes = loadErrorTypes();
const Status = errorTypes.lookupType("google.rpc.Status");

/** The rich status of a failed call: code name, message, ErrorInfo reason and field violations. */
function describeError(error) {
  const described = { code: grpc.status[error.code], message: error.details, reason: "", violations: {} };
  const [raw] = error.metadata?.get("grpc-status-details-bin") ?? [];
  if (!raw) return described;
  for (const detail of Status.decode(raw).details) {
    const typeName = detail.type_url.split("/").pop();
    const message = errorTypes.lookupType(typeName).decode(detail.value);
    if (typeName === "google.rpc.ErrorInfo") described.reason = message.reason;
    if (typeName === "google.rpc.BadRequest") {
      for (const violation of message.fieldViolations) described.violations[violation.field] = violation.description;
    }
  }
  return described;
}

/** Promise form of a unary call with a deadline and optional bearer token. */
function call(client, method, request, token) {
  const metadata = new grpc.Metadata();
  if (token) metadata.set("authorization", `Bearer ${token}`);
  const deadline = new Date(Date.now() + DEADLINE_MS);
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline }, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

async function main() {
  const password = options.password || `pw-${randomUUID()}`;
  const v1 = loadServices(options["proto-dir"]);
  const credentials = options.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
  const users = new v1.UserService(options.address, credentials);
  const auth = new v1.AuthService(options.address, credentials);
  const email = `${options.username}@example.com`;

  const registered = await call(users, "Register", {
    username: options.username,
    email,
    password,
    request_id: randomUUID(),
  });
  let duplicate = null;
  try {
    await call(users, "Register", { username: options.username, email: `other-${email}`, password });
  } catch (error) {
    duplicate = describeError(error);
  }
  const session = await call(auth, "Authenticate", { login: options.username, password });
  const me = await call(users, "GetUser", { user_id: "me" }, session.access_token);
  users.close();
  auth.close();

  const result = {
    registered: { user_id: registered.user.user_id, username: registered.user.username, state: registered.user.state },
    duplicate_register: duplicate,
    authenticated: { token_type: session.token_type, expires_in: Number(session.expires_in) },
    me: {
      user_id: me.user.user_id,
      username: me.user.username,
      email: me.user.email,
      etag: me.user.etag,
      roles: me.user.roles,
    },
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((error) => {
  const described = error.code === undefined ? { message: String(error) } : describeError(error);
  process.stderr.write(`usermgmt-example: ${JSON.stringify(described)}\n`);
  process.exit(1);
});
