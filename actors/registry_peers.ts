/**
 * Several replicas on one PostgreSQL: each replica's registry follows what the others write
 * to the shared records (registrations, heartbeats, health, removals), so any replica lists,
 * discovers, heartbeats and deregisters any instance, and the leader health-checks them all.
 *
 * Every write gives the record (or its tombstone) the next revision of one sequence; every
 * {@link SYNC_MS} the actor reads what changed past a floor and applies it, each instance in
 * its own mailbox queue. Revisions are taken when a statement runs and become visible when it
 * commits, so a lower one can appear after a higher one was read: the floor trails by
 * {@link WINDOW_MS} (what changed in the last seconds is read again; applying a record that is
 * already held changes nothing). A record read before a write of this replica to the same
 * instance began is older than that write and is not applied.
 */
import type { Instance } from "../lib/registry/model.ts";
import type { InstanceIndex } from "../lib/registry/instances.ts";
import type { RegistryBackend } from "../lib/registry/backend.ts";
import { type RegistryStore, sameRecord } from "../lib/registry/store.ts";
import type { InstanceRef } from "./registry_protocol.ts";
import { log } from "../lib/log.ts";

/** How often a replica reads what the others wrote, ms. */
export const SYNC_MS = 500;
/** How far behind the newest revision read the next read starts, ms. */
export const WINDOW_MS = 5_000;

export interface PeerDeps {
  store: RegistryStore;
  index: InstanceIndex;
  backend: RegistryBackend;
  /** Runs `fn` in the mailbox queue of instance `service/id`. */
  exclusive(service: string, id: string, fn: () => Promise<void> | void): Promise<void>;
  /** Health targets added (or changed) and removed. */
  announce(added: Instance[], removed: InstanceRef[]): void;
}

/** One replica's reading of the others' writes. */
export class PeerSync {
  readonly #d: PeerDeps;
  /** (when a read began, the highest revision it saw), oldest first. */
  #marks: { at: number; rev: number }[] = [];
  /** "service/id" → when this replica last began a write to it (performance.now()). */
  readonly #local = new Map<string, number>();
  #failing = false;

  constructor(d: PeerDeps) {
    this.#d = d;
  }

  /** The records are shared with other replicas (the store reports changes). */
  get shared(): boolean {
    return typeof this.#d.store.changes === "function";
  }

  /** One {@link poll}, its failure logged once until it succeeds again. */
  async run(): Promise<void> {
    try {
      await this.poll();
      if (this.#failing) log.info("registry records readable again; following other replicas");
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) {
        log.warn("could not read the registry records other replicas wrote; retrying", {
          error: String(err),
        });
      }
      this.#failing = true;
    }
  }

  /**
   * The instance as this replica knows it, else (records shared with other replicas) as the
   * store has it: registered through another replica since the last sync.
   */
  async known(service: string, id: string): Promise<Instance | undefined> {
    const i = this.#d.index.get(service, id);
    if (i || !this.shared) return i;
    const stored = await this.#d.store.get(service, id);
    if (!stored) return undefined;
    this.adopt(stored);
    return this.#d.index.get(service, id);
  }

  /**
   * The instance as the store has it now (shared records; another replica may have taken a
   * heartbeat since the last sync), else as held; undefined (and forgotten) when it is gone.
   */
  async refresh(service: string, id: string): Promise<Instance | undefined> {
    if (!this.shared) return this.#d.index.get(service, id);
    const stored = await this.#d.store.get(service, id);
    if (!stored) {
      await this.drop(service, id);
      return undefined;
    }
    this.adopt(stored);
    return this.#d.index.get(service, id) ?? stored;
  }

  /**
   * A znode of a registration went without this replica removing it (its owner's session
   * ended, or another replica deregistered it): written back while the record stands,
   * forgotten when it does not. Runs in the instance's queue.
   */
  async vanished(service: string, id: string): Promise<void> {
    const i = this.#d.index.get(service, id);
    if (!i || i.source) return;
    const now = await this.refresh(service, id);
    if (now) await this.#d.backend.recreate?.(now);
  }

  /** A write of this replica to `service/id` begins now: older reads do not undo it. */
  touched(service: string, id: string): void {
    this.#local.set(`${service}/${id}`, performance.now());
  }

  /** The highest revision seen by a read that began at least WINDOW_MS ago (0: none). */
  #floor(now: number): number {
    let floor = 0;
    let keep = 0;
    for (let k = 0; k < this.#marks.length; k++) {
      if (this.#marks[k].at > now - WINDOW_MS) break;
      floor = Math.max(floor, this.#marks[k].rev);
      keep = k;
    }
    // The newest mark old enough stays: it is the floor until a newer one is old enough.
    this.#marks = this.#marks.slice(keep);
    return floor;
  }

  /** Reads and applies what changed; resolves once each change is applied. */
  async poll(): Promise<void> {
    const changes = this.#d.store.changes;
    if (!changes) return;
    const started = performance.now();
    const floor = this.#floor(started);
    const got = await changes.call(this.#d.store, floor);
    let high = floor;
    const items: { rev: number; up?: Instance; gone?: InstanceRef }[] = [];
    for (const u of got.upserts) {
      items.push({ rev: u.revision, up: u.instance });
      high = Math.max(high, u.revision);
    }
    for (const r of got.removed) {
      items.push({ rev: r.revision, gone: { service: r.service, id: r.id } });
      high = Math.max(high, r.revision);
    }
    this.#marks.push({ at: started, rev: high });
    items.sort((a, b) => a.rev - b.rev);
    const { index, exclusive } = this.#d;
    const work: Promise<void>[] = [];
    for (const it of items) {
      if (it.up) {
        const i = it.up;
        const cur = index.get(i.service_name, i.instance_id);
        // Most records read are held already (this replica's own writes, the window's rereads).
        if (cur && (cur.source || sameRecord(cur, i))) continue;
        work.push(exclusive(i.service_name, i.instance_id, () => this.#adopt(i, started)));
      } else if (it.gone) {
        const { service, id } = it.gone;
        const cur = index.get(service, id);
        if (!cur || cur.source) continue;
        work.push(exclusive(service, id, () => this.#drop(service, id, started)));
      }
    }
    await Promise.all(work);
    for (const [k, at] of this.#local) {
      if (at < started - 2 * WINDOW_MS) this.#local.delete(k);
    }
  }

  /** Whether this replica began writing `service/id` after a read that began at `started`. */
  #newer(service: string, id: string, started: number): boolean {
    return (this.#local.get(`${service}/${id}`) ?? -Infinity) >= started;
  }

  /** Takes `i` as read from the store (another replica's registration or change). */
  adopt(i: Instance): void {
    const { index, backend } = this.#d;
    const cur = index.get(i.service_name, i.instance_id);
    if (cur?.source || (cur && sameRecord(cur, i))) return;
    index.set(i);
    backend.hold(i);
    if (
      !cur || cur.service_url !== i.service_url || cur.health_check_url !== i.health_check_url
    ) {
      this.#d.announce([i], []);
    }
  }

  #adopt(i: Instance, started: number): void {
    if (this.#newer(i.service_name, i.instance_id, started)) return;
    this.adopt(i);
  }

  /** Forgets `service/id`, removed through another replica. */
  async drop(service: string, id: string): Promise<void> {
    const cur = this.#d.index.get(service, id);
    if (!cur || cur.source) return;
    this.#d.index.delete(service, id);
    this.#d.announce([], [{ service, id }]);
    await this.#d.backend.release(service, id);
  }

  async #drop(service: string, id: string, started: number): Promise<void> {
    if (this.#newer(service, id, started)) return;
    await this.drop(service, id);
  }
}
