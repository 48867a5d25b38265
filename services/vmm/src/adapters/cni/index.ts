/** CNI for the vmm: networks from conflists, plugins run per the spec, netns helpers, kindling's tap plugin. */
export { CniNetwork, cniNetworkResolver, type CniNetworkOptions } from './cni-network.ts';
export {
  loadNetworkConfigList,
  toConfigList,
  DEFAULT_CNI_CONF_DIR,
  type CniNetworkConfigList,
} from './conflist.ts';
export { parseCniResult, SUPPORTED_CNI_VERSIONS, type CniResult } from './result.ts';
export { attachmentFromResult, CniAttachmentError } from './attachment.ts';
export {
  invokePlugin,
  findPlugin,
  CniPluginError,
  CniTryAgainError,
  DEFAULT_CNI_BIN_DIRS,
  KINDLING_PLUGIN_DIR,
} from './plugin-exec.ts';
export { CniResultCache, DEFAULT_CNI_CACHE_DIR } from './result-cache.ts';
export {
  createNetns,
  deleteNetns,
  listNetns,
  netnsExists,
  netnsPath,
  linkFacts,
  NETNS_DIR,
} from './netns.ts';
export { installConflist, EXAMPLE_CONFLIST_DIR, type ConflistInstallOptions } from './install.ts';
export type { CniAttachment, VmNetwork } from '../../ports/vm-network.ts';
