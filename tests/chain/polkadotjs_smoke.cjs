// An independent Substrate client against a node: polkadot.js (@polkadot/api), the one most
// wallets and explorers use, pinned through chain/chopsticks/package-lock.json (Chopsticks
// depends on it, so nothing extra is installed). Run by tests/chain/test_independent_clients.py:
//
//   NODE_PATH=chain/chopsticks/node_modules node tests/chain/polkadotjs_smoke.cjs ws://127.0.0.1:9944
//
// It decodes the metadata, reads storage, sends a transfer and a DecentralML create_task signed by
// //Alice, then protocol 2's create_task_with_terms, create_peer_job and join_peer_job, waits for
// each in a block, and prints one JSON line with what it saw.
const { ApiPromise, WsProvider, Keyring } = require("@polkadot/api");

async function inBlock(api, tx, signer) {
  // The nonce is asked of the node for each transaction: left to itself, polkadot.js derives it
  // through a memoized query that can still hold the previous transaction's nonce when the next
  // one is signed right after the first was included (Chopsticks then answers "stale").
  const nonce = await api.rpc.system.accountNextIndex(signer.address);
  return new Promise((resolve, reject) => {
    tx.signAndSend(signer, { nonce }, ({ status, events, dispatchError }) => {
      if (process.env.SMOKE_DEBUG) console.error(`status ${status.type}`);
      if (dispatchError) {
        reject(new Error(`dispatch error: ${dispatchError.toString()}`));
      } else if (status.isInBlock || status.isFinalized) {
        // polkadot.js fetches a block's events per status and drops that work when the next
        // status arrives; an instant-seal chain announces inBlock and finalized back to back,
        // so only the second may be reported.
        const block = status.isInBlock ? status.asInBlock : status.asFinalized;
        resolve({ block: block.toHex(),
                  events: events.map(({ event }) => `${event.section}.${event.method}`) });
      } else if (status.isInvalid || status.isDropped) {
        reject(new Error(`transaction ${status.type}`));
      }
    }).catch(reject);
  });
}

async function main() {
  const url = process.argv[2];
  const log = (m) => process.env.SMOKE_DEBUG && console.error(m);
  log("connecting");
  const api = await ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true });
  const alice = new Keyring({ type: "sr25519" }).addFromUri("//Alice");
  const bob = new Keyring({ type: "sr25519" }).addFromUri("//Bob");
  const out = {
    specName: api.runtimeVersion.specName.toString(),
    specVersion: api.runtimeVersion.specVersion.toNumber(),
    properties: api.registry.getChainProperties().toJSON(),
    pallets: api.runtimeMetadata.asLatest.pallets.map((p) => p.name.toString()),
    decentralmlCalls: Object.keys(api.tx.decentralML || {}),
    maxAssignments: api.consts.decentralML.maxAssignments.toNumber(),
    nextTaskIdBefore: (await api.query.decentralML.nextTaskId()).toNumber(),
  };
  log("read");
  const before = (await api.query.system.account(bob.address)).data.free.toBigInt();
  out.transfer = await inBlock(api, api.tx.balances.transferKeepAlive(bob.address, 10n ** 12n),
                               alice);
  const after = (await api.query.system.account(bob.address)).data.free.toBigInt();
  out.bobGained = (after - before).toString();
  log("transferred");
  const head = (await api.rpc.chain.getHeader()).number.toNumber();
  out.createTask = await inBlock(api, api.tx.decentralML.createTask(
    "DataAnnotator", "label these (polkadot.js)", 10n ** 10n, 2, "ManualAccept",
    "bafkreipolkadotjs", "Ipfs", head + 100), alice);
  out.nextTaskIdAfter = (await api.query.decentralML.nextTaskId()).toNumber();
  const task = await api.query.decentralML.tasks(out.nextTaskIdBefore);
  out.task = task.unwrap().toHuman();
  log("created");
  // protocol 2: a task with terms (a struct argument), a peer job, a join (decoded events)
  const termsHead = (await api.rpc.chain.getHeader()).number.toNumber();
  const termed = await inBlock(api, api.tx.decentralML.createTaskWithTerms(
    "ModelContributor", "train on your shard (polkadot.js)", 10n ** 10n, 2, "ManualAccept",
    "bafkreipolkadotjs", "Ipfs", termsHead + 100,
    { shards: 2, payout: "ByContribution", floor: 10n ** 9n,
      holdoutCommitment: "0x" + "ab".repeat(32), scoringCommitment: null }), alice);
  out.createTaskWithTerms = termed;
  out.terms = (await api.query.decentralML.terms(out.nextTaskIdAfter)).unwrap().toJSON();
  const jobId = (await api.query.decentralML.nextPeerJobId()).toNumber();
  out.createPeerJob = await inBlock(api, api.tx.decentralML.createPeerJob(
    "bafkreipeerjob", "Ipfs", 3, 10, 10, 4), alice);
  out.joinPeerJob = await inBlock(api, api.tx.decentralML.joinPeerJob(jobId), bob);
  out.peerJob = (await api.query.decentralML.peerJobs(jobId)).unwrap().toJSON();
  out.peerRound = (await api.query.decentralML.peers(jobId, bob.address)).toJSON();
  console.log(JSON.stringify(out));
  await api.disconnect();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
