// Replaced below by the real global setup (embedded PostgreSQL + redis-server for the run).
export default async function setup(): Promise<void> {}
