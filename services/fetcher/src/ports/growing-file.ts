/** A file still being written: read what is on disk so far, by position. */
export interface GrowingFile {
  /** Reads bytes [offset, min(end, offset + chunk)); an empty buffer means nothing is there yet. */
  read(offset: number, end: number): Promise<Buffer>;
  close(): Promise<void>;
}

export interface GrowingFileReader {
  open(path: string): Promise<GrowingFile>;
}
