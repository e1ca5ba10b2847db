// dcm.cc - the C-callable layer over DCMTK (see dcm.h). C++ only because DCMTK is;
// no exception or DCMTK type crosses into C, every failure is a basira_code.
#include "deid/dcm.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcobject.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcvr.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/oflog/oflog.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <sys/mman.h>
#include <unistd.h>

struct deid_dcm {
    DcmFileFormat ff;
};

static DcmItem *item_of(deid_node *n)
{
    return reinterpret_cast<DcmItem *>(n);
}

static deid_node *node_of(DcmItem *i)
{
    return reinterpret_cast<deid_node *>(i);
}

static basira_code fail(basira_error *err, const char *what, const OFCondition &c)
{
    return basira_error_set(err, BASIRA_E_FORMAT, "%s: %s", what, c.text());
}

static void quiet_dcmtk()
{
    // DCMTK logs warnings on stderr by default; Basira reports errors itself.
    OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
    // An attribute written with VR UN (e.g. by a gateway that did not know it) is read with
    // its VR from the data dictionary, so that a Patient's Name sent as UN is still seen as
    // a name, and a sequence sent as UN is walked. (DCMTK's process-wide setting; Basira
    // always sets it to the same value.)
    dcmPreferVRFromDataDictionary.set(OFTrue);
}

// After reading: everything must be in memory (a lazy element would be read from the
// file later) and the stream must have been consumed entirely.
static basira_code finish_load(deid_dcm *d, basira_error *err)
{
    OFCondition c = d->ff.loadAllDataIntoMemory();
    if (c.bad())
        return fail(err, "DICOM", c);
    DcmDataset *ds = d->ff.getDataset();
    if (!ds || ds->card() == 0)
        return basira_error_set(err, BASIRA_E_FORMAT, "DICOM: empty data set");
    return BASIRA_OK;
}

extern "C" basira_code deid_dcm_load_file(const char *path, deid_dcm **out, basira_error *err)
{
    *out = nullptr;
    quiet_dcmtk();
    deid_dcm *d = new (std::nothrow) deid_dcm;
    if (!d)
        return basira_error_set(err, BASIRA_E_NOMEM, nullptr);
    OFCondition c = d->ff.loadFile(path, EXS_Unknown, EGL_noChange, DCM_MaxReadLength,
                                   ERM_autoDetect);
    basira_code rc = c.bad() ? fail(err, "DICOM", c) : finish_load(d, err);
    if (rc) {
        delete d;
        return rc;
    }
    *out = d;
    return BASIRA_OK;
}

// From memory through an anonymous in-memory file (memfd): DCMTK then reads with exactly the
// code path of a file on disk, including its check that no element claims more bytes than the
// file holds (its buffer stream has no such check, and would allocate what a hostile length
// field asks for).
extern "C" basira_code deid_dcm_load_buffer(const void *data, size_t len, deid_dcm **out,
                                            basira_error *err)
{
    *out = nullptr;
    int fd = memfd_create("basira-dicom", MFD_CLOEXEC);
    if (fd < 0)
        return basira_error_set(err, BASIRA_E_IO, "memfd_create: %s", std::strerror(errno));
    const char *p = static_cast<const char *>(data);
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w <= 0) {
            close(fd);
            return basira_error_set(err, BASIRA_E_IO, "memfd: %s", std::strerror(errno));
        }
        done += static_cast<size_t>(w);
    }
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    basira_code rc = deid_dcm_load_file(path, out, err);
    close(fd);
    return rc;
}

extern "C" void deid_dcm_free(deid_dcm *d)
{
    delete d;
}

extern "C" deid_node *deid_dcm_dataset(deid_dcm *d)
{
    return node_of(d->ff.getDataset());
}

extern "C" deid_node *deid_dcm_meta(deid_dcm *d)
{
    DcmMetaInfo *m = d->ff.getMetaInfo();
    return m && m->card() ? node_of(m) : nullptr;
}

extern "C" size_t deid_node_count(deid_node *n)
{
    return item_of(n)->card();
}

extern "C" basira_code deid_node_elem(deid_node *n, size_t i, deid_elem *out)
{
    DcmElement *el = item_of(n)->getElement(static_cast<unsigned long>(i));
    if (!el)
        return BASIRA_E_NOT_FOUND;
    std::memset(out, 0, sizeof *out);
    out->group = el->getGTag();
    out->element = el->getETag();
    DcmVR vr(el->ident());
    std::strncpy(out->vr, vr.getVRName(), 2);
    out->is_sequence = el->ident() == EVR_SQ || !el->isLeaf();
    out->is_string = !out->is_sequence && vr.isaString() && el->ident() != EVR_UN;
    if (out->is_sequence)
        out->items = static_cast<DcmSequenceOfItems *>(el)->card();
    out->length = el->getLength();
    return BASIRA_OK;
}

extern "C" basira_code deid_node_string(deid_node *n, size_t i, char **out, basira_error *err)
{
    *out = nullptr;
    DcmElement *el = item_of(n)->getElement(static_cast<unsigned long>(i));
    if (!el)
        return basira_error_set(err, BASIRA_E_NOT_FOUND, nullptr);
    OFString s;
    if (el->getLength() > 0) {
        OFCondition c = el->getOFStringArray(s);
        if (c.bad())
            return fail(err, "DICOM value", c);
    }
    *out = strdup(s.c_str());
    return *out ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, nullptr);
}

extern "C" deid_node *deid_node_item(deid_node *n, size_t i, size_t k)
{
    DcmElement *el = item_of(n)->getElement(static_cast<unsigned long>(i));
    if (!el || el->isLeaf())
        return nullptr;
    DcmItem *it = static_cast<DcmSequenceOfItems *>(el)->getItem(static_cast<unsigned long>(k));
    return it ? node_of(it) : nullptr;
}

extern "C" basira_code deid_node_remove(deid_node *n, size_t i, basira_error *err)
{
    DcmElement *el = item_of(n)->remove(static_cast<unsigned long>(i));
    if (!el)
        return basira_error_set(err, BASIRA_E_NOT_FOUND, "DICOM: element %zu not found", i);
    delete el;
    return BASIRA_OK;
}

extern "C" basira_code deid_node_empty(deid_node *n, size_t i, basira_error *err)
{
    DcmElement *el = item_of(n)->getElement(static_cast<unsigned long>(i));
    if (!el)
        return basira_error_set(err, BASIRA_E_NOT_FOUND, "DICOM: element %zu not found", i);
    OFCondition c = el->clear();
    return c.bad() ? fail(err, "DICOM", c) : BASIRA_OK;
}

extern "C" basira_code deid_node_set_string(deid_node *n, size_t i, const char *value,
                                            basira_error *err)
{
    DcmElement *el = item_of(n)->getElement(static_cast<unsigned long>(i));
    if (!el)
        return basira_error_set(err, BASIRA_E_NOT_FOUND, "DICOM: element %zu not found", i);
    OFCondition c = el->putString(value);
    return c.bad() ? fail(err, "DICOM", c) : BASIRA_OK;
}

extern "C" basira_code deid_node_get_tag(deid_node *n, uint16_t g, uint16_t e, char **out,
                                         basira_error *err)
{
    *out = nullptr;
    OFString s;
    OFCondition c = item_of(n)->findAndGetOFStringArray(DcmTagKey(g, e), s);
    if (c.bad() || s.empty())
        return BASIRA_E_NOT_FOUND;
    *out = strdup(s.c_str());
    return *out ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, nullptr);
}

extern "C" basira_code deid_node_put_tag(deid_node *n, uint16_t g, uint16_t e, const char *value,
                                         basira_error *err)
{
    OFCondition c = item_of(n)->putAndInsertString(DcmTag(g, e), value, OFTrue);
    return c.bad() ? fail(err, "DICOM", c) : BASIRA_OK;
}

extern "C" basira_code deid_node_add_code(deid_node *n, uint16_t g, uint16_t e, const char *value,
                                          const char *scheme, const char *meaning,
                                          basira_error *err)
{
    DcmItem *it = nullptr;
    OFCondition c = item_of(n)->findOrCreateSequenceItem(DcmTagKey(g, e), it, -2 /* append */);
    if (c.good() && it)
        c = it->putAndInsertString(DCM_CodeValue, value);
    if (c.good())
        c = it->putAndInsertString(DCM_CodingSchemeDesignator, scheme);
    if (c.good())
        c = it->putAndInsertString(DCM_CodeMeaning, meaning);
    return c.bad() ? fail(err, "DICOM", c) : BASIRA_OK;
}

extern "C" basira_code deid_dcm_blank_rect(deid_dcm *d, long x, long y, long w, long h,
                                           basira_error *err)
{
    DcmDataset *ds = d->ff.getDataset();
    if (DcmXfer(ds->getOriginalXfer()).isEncapsulated())
        return basira_error_set(err, BASIRA_E_UNSUPPORTED, "compressed pixel data");
    Uint16 rows = 0, cols = 0, spp = 1, bits = 0, planar = 0;
    OFString photometric, frames_s;
    ds->findAndGetUint16(DCM_Rows, rows);
    ds->findAndGetUint16(DCM_Columns, cols);
    ds->findAndGetUint16(DCM_SamplesPerPixel, spp);
    ds->findAndGetUint16(DCM_BitsAllocated, bits);
    ds->findAndGetUint16(DCM_PlanarConfiguration, planar);
    ds->findAndGetOFString(DCM_PhotometricInterpretation, photometric);
    long frames = 1;
    if (ds->findAndGetOFString(DCM_NumberOfFrames, frames_s).good() && !frames_s.empty())
        frames = std::atol(frames_s.c_str());
    if (!rows || !cols || !spp || frames < 1 || (bits != 8 && bits != 16 && bits != 32) ||
        photometric.find("422") != OFString_npos || photometric.find("420") != OFString_npos)
        return basira_error_set(err, BASIRA_E_UNSUPPORTED, "pixel layout");
    DcmElement *px = nullptr;
    Uint8 *data = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, px).bad() || px->getUint8Array(data).bad() || !data)
        return basira_error_set(err, BASIRA_E_UNSUPPORTED, "no pixel data");
    size_t bps = bits / 8, need = static_cast<size_t>(frames) * rows * cols * spp * bps;
    if (px->getLength() < need)
        return basira_error_set(err, BASIRA_E_FORMAT, "pixel data shorter than its image");
    long x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    long x1 = x + w > cols ? cols : x + w, y1 = y + h > rows ? rows : y + h;
    for (long f = 0; f < frames; f++)
        for (long s = 0; s < spp; s++)
            for (long r = y0; r < y1; r++)
                for (long c = x0; c < x1; c++) {
                    size_t i = planar ? ((static_cast<size_t>(f) * spp + s) * rows + r) * cols + c
                                      : ((static_cast<size_t>(f) * rows + r) * cols + c) * spp + s;
                    std::memset(data + i * bps, 0, bps);
                }
    return BASIRA_OK;
}

extern "C" basira_code deid_dcm_save_file(deid_dcm *d, const char *path, basira_error *err)
{
    OFCondition c = d->ff.saveFile(path, EXS_Unknown, EET_UndefinedLength, EGL_recalcGL,
                                   EPD_noChange, 0, 0, EWM_updateMeta);
    if (c.bad())
        return basira_error_set(err, BASIRA_E_IO, "%s: %s", path, c.text());
    return BASIRA_OK;
}
